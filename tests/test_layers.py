"""Critical-layer distillation (kdlib.layers, losses.hint_loss): pooled teacher states that padding
never changes, a hint student whose logits and initial weights are its plain twin's, the hint loss."""
import numpy as np
import pytest
import torch

from kdlib import data, layers, losses, models


def test_hint_loss_hand_values():
    s = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (B=1, L=2, D=2)
    t = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert losses.hint_loss(s, t, "mse").item() == pytest.approx(4.0 / 4)  # one squared error of 4 over 4 entries
    t2 = torch.tensor([[[2.0, 0.0], [1.0, 0.0]]])  # same direction, then orthogonal
    assert losses.hint_loss(s, t2, "cosine").item() == pytest.approx((0.0 + 1.0) / 2)
    with pytest.raises(ValueError, match="batch, layers, dim"):
        losses.hint_loss(s[0], t[0])
    with pytest.raises(ValueError, match="kind must be one of"):
        losses.hint_loss(s, t, "l1")


@pytest.mark.parametrize("arch", models.ARCHS)
def test_hint_student_keeps_its_twins_weights_and_logits(arch):
    plain = models.build_student(arch, 16, 30, seed=3, emb_dim=8, dropout=0.0)
    hinted = layers.HintStudent(models.build_student(arch, 16, 30, seed=3, emb_dim=8, dropout=0.0), dim=5, n_layers=2, seed=3)
    for (k, a), b in zip(plain.state_dict().items(), hinted.student.state_dict().values()):
        assert torch.equal(a, b), k
    ids = torch.randint(1, 30, (4, 9))
    mask = torch.ones_like(ids)
    hinted.train()
    plain.train()
    torch.testing.assert_close(hinted(ids, mask), plain(ids, mask))
    assert hinted.hints.shape == (4, 2, 5)
    hinted.eval()
    hinted.hints = None
    hinted(ids, mask)
    assert hinted.hints is None  # no projections outside training
    assert layers.HintStudent(models.build_student(arch, 16, 30, seed=3), 5, 0, seed=3)(ids, mask).shape == (4,)


def _tiny_teacher():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                     num_labels=1, max_position_embeddings=32)
    return models.Teacher(BertForSequenceClassification(cfg)).eval()


def test_pooled_states_are_the_mean_over_real_tokens_whatever_the_padding():
    teacher = _tiny_teacher()
    seqs = [np.array([2, 5, 7, 3]), np.array([2, 9, 3]), np.array([2, 4, 4, 4, 4, 6, 3])]
    ds = data.SeqDataset(seqs, [0, 1, 1], ids=[10, 11, 12])
    out = layers.pooled_states(teacher, data.make_loader(ds, 3, shuffle=False))
    alone = layers.pooled_states(teacher, data.make_loader(ds, 1, shuffle=False))  # no padding at all
    assert out["states"].shape == (3, 3, 8) and out["states"].dtype == np.float16
    np.testing.assert_array_equal(out["ids"], [10, 11, 12])
    np.testing.assert_allclose(out["states"].astype(float), alone["states"].astype(float), atol=2e-3)
    ids = torch.tensor([[2, 9, 3]])
    hidden = teacher.hf(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True).hidden_states
    np.testing.assert_allclose(out["states"][1].astype(float), torch.stack([h[0].mean(0) for h in hidden]).detach().numpy(), atol=2e-3)


def test_truncate_keeps_the_chosen_layers_in_order():
    teacher = _tiny_teacher()
    layer1 = {k: v.clone() for k, v in teacher.hf.bert.encoder.layer[1].state_dict().items()}
    cut = layers.truncate(teacher, [1])
    assert len(cut.hf.bert.encoder.layer) == 1 and cut.hf.config.num_hidden_layers == 1
    for k, v in cut.hf.bert.encoder.layer[0].state_dict().items():
        assert torch.equal(v, layer1[k])
    ids = torch.tensor([[2, 5, 3]])
    assert len(cut.hf(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True).hidden_states) == 2
    with pytest.raises(ValueError, match="increasing"):
        layers.truncate(_tiny_teacher(), [1, 0])


def test_with_states_returns_the_logits_and_keeps_pooled_states_in_training():
    teacher = _tiny_teacher()
    wrapped = layers.WithStates(teacher, [0, 2])
    ids = torch.tensor([[2, 5, 7, 3], [2, 9, 3, 0]])
    mask = (ids != 0).long()
    wrapped.train()
    torch.manual_seed(0)
    a = wrapped(ids, mask)
    teacher.train()
    torch.manual_seed(0)
    torch.testing.assert_close(a, teacher(ids, mask))
    assert wrapped.hints.shape == (2, 2, 8)
    wrapped.eval()
    teacher.eval()
    loader = data.make_loader(data.SeqDataset([np.array([2, 9, 3])], [1], ids=[0]), 1, shuffle=False)
    want = layers.pooled_states(teacher, loader)["states"][0, [0, 2]].astype(float)
    wrapped.train()
    teacher.hf.config.hidden_dropout_prob = 0.0
    for m in teacher.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    wrapped(ids[1:, :3], mask[1:, :3])
    np.testing.assert_allclose(wrapped.hints[0].detach().numpy(), want, atol=2e-3)


def test_cached_states_read_back_what_a_probe_cached_and_say_how_to_remake_them(tmp_path, monkeypatch):
    from kdlib import paths

    monkeypatch.setattr(paths, "cache_dir", lambda: tmp_path)
    probe = {"params": {"name": "layers_teacher"}, "states": {"train": {"cache_path": "teacher_layers/t-train.npz"}}}
    with pytest.raises(FileNotFoundError, match="--forcerun results/runs/layers_teacher/metrics.json"):
        layers.cached_states(probe)
    (tmp_path / "teacher_layers").mkdir()
    np.savez(tmp_path / "teacher_layers" / "t-train.npz", ids=np.array([2, 5]), states=np.ones((2, 7, 3), np.float16))
    got = layers.cached_states(probe)
    assert got["ids"].tolist() == [2, 5] and got["states"].shape == (2, 7, 3)
