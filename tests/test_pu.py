"""kdlib.pu: the PU construction (prior, labelled fraction, determinism, unlabelled prior, errors)."""
import json

import numpy as np
import pandas as pd
import pytest

from kdlib import pu


def frame(n_pos=500, n_neg=1500, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)])
    return pd.DataFrame({"id": np.arange(len(labels)) * 7, "text": [f"t{i}" for i in range(len(labels))],
                         "label": labels})


@pytest.mark.parametrize("prior", [0.1, 0.3])
def test_prior_achieved_and_as_many_rows_as_possible(prior):
    df, info = pu.make_pu(frame(), prior, 0.2, seed=0)
    assert df["label"].mean() == pytest.approx(prior, abs=2e-3)
    assert info["prior"] == pytest.approx(df["label"].mean())
    assert (df["label"] == 0).sum() == 1500 or (df["label"] == 1).sum() == 500  # a class is used whole


def test_fixed_n_and_natural_prior():
    df, info = pu.make_pu(frame(), 0.1, 0.5, seed=1, n=400)
    assert len(df) == 400 and df["label"].sum() == 40
    nat, info = pu.make_pu(frame(), None, 0.5, seed=1)
    assert len(nat) == 2000 and info["prior"] == 0.25 and info["prior_requested"] is None


@pytest.mark.parametrize("c", [0.2, 0.5, 1.0])
def test_labelled_fraction_only_positives(c):
    df, info = pu.make_pu(frame(), 0.3, c, seed=3)
    lab = df["pu_label"] == 1
    assert df.loc[lab, "label"].eq(1).all()  # only positives are ever labelled
    assert lab.sum() == round(c * df["label"].sum()) == info["n_labelled"]
    assert info["labelled_frac"] == pytest.approx(c, abs=1e-2)


def test_seeded_determinism_and_ids_kept():
    a, ia = pu.make_pu(frame(), 0.1, 0.2, seed=5)
    b, ib = pu.make_pu(frame(), 0.1, 0.2, seed=5)
    c, ic = pu.make_pu(frame(), 0.1, 0.2, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert ia == ib and ia["hash"] != ic["hash"]
    assert set(a["id"]) <= set(frame()["id"]) and a["id"].is_unique
    json.dumps(ia)  # JSON-able


@pytest.mark.parametrize("prior,c", [(0.1, 0.2), (0.3, 0.2), (0.24, 0.5), (0.5, 1.0)])
def test_unlabelled_prior_formula(prior, c):
    expected = prior * (1 - c) / (1 - prior * c)
    assert pu.unlabelled_prior(prior, c) == pytest.approx(expected)
    df, info = pu.make_pu(frame(1000, 1000), prior, c, seed=0)
    unl = df[df["pu_label"] == 0]
    assert info["unlabelled_prior"] == pytest.approx(unl["label"].mean())  # the real share in U
    assert info["unlabelled_prior"] == pytest.approx(pu.unlabelled_prior(info["prior"], info["labelled_frac"]))
    assert info["unlabelled_prior"] == pytest.approx(expected, abs=5e-3)
    assert c == 1.0 or info["unlabelled_prior"] < info["prior"]


def test_subsample_to_prior_for_test_sets():
    t = pu.subsample_to_prior(frame(), 0.1, seed=0, n=300)
    assert len(t) == 300 and t["label"].sum() == 30 and "pu_label" not in t


@pytest.mark.parametrize("kw,msg", [
    (dict(prior=0.0, labelled_frac=0.2), "prior"), (dict(prior=1.0, labelled_frac=0.2), "prior"),
    (dict(prior=-0.1, labelled_frac=0.2), "prior"), (dict(prior="0.1", labelled_frac=0.2), "prior"),
    (dict(prior=0.1, labelled_frac=0.0), "labelled_frac"), (dict(prior=0.1, labelled_frac=1.5), "labelled_frac"),
    (dict(prior=0.1, labelled_frac=0.2, n=1), "n must"),
    (dict(prior=0.9, labelled_frac=0.2, n=1900), "not enough"),
])
def test_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        pu.make_pu(frame(), seed=0, **kw)
    if "n" not in kw and msg != "not enough":
        with pytest.raises(ValueError, match=msg):
            pu.unlabelled_prior(kw["prior"] if kw["prior"] != "0.1" else "0.1", kw["labelled_frac"])


def test_errors_on_labels():
    bad = frame().assign(label=2)
    with pytest.raises(ValueError, match="binary"):
        pu.make_pu(bad, 0.1, 0.2, seed=0)
    with pytest.raises(ValueError, match="both classes"):
        pu.make_pu(frame().assign(label=0), 0.1, 0.2, seed=0)
    with pytest.raises(ValueError, match="no 'y' column"):
        pu.make_pu(frame(), 0.1, 0.2, seed=0, label_col="y")


# --- the teacher cache of train.online_distill (used by the PU study to train each teacher once) ---

def _online(toy_data, tmp_path, meta, te, se, alpha, beta, cache=None, kind="imbalanced_nnpu"):
    import torch

    from kdlib import data, losses, models, train

    ds = toy_data(48, seed=1)
    loader = data.make_loader(ds, 16, shuffle=True, seed=0)
    teacher = models.build_student("gru", 16, 20, seed=0, emb_dim=8)
    student = models.build_student("cnn", 16, 20, seed=1, emb_dim=8)
    loss = losses.pu_loss(kind, prior=0.4)
    seen = []
    log = train.online_distill(teacher, student, loader, {"train": data.make_loader(ds, 64, shuffle=False)},
                               loss, loss, alpha=alpha, label_share=beta, meta_epochs=meta, teacher_epochs=te,
                               student_epochs=se, seed=0, teacher_cache=cache,
                               on_student_epoch=lambda m, e, t, s: seen.append((m, e)))
    assert seen == [(m, e) for m in range(meta) for e in range(se)]
    return {k: v.clone() for k, v in teacher.state_dict().items()}, log


def test_teacher_trajectory_shared_online_offline_and_cached(toy_data, tmp_path):
    import torch

    online, log = _online(toy_data, tmp_path, 2, 1, 1, 0.5, 0.5)
    offline, _ = _online(toy_data, tmp_path, 1, 2, 2, 0.5, 0.5)
    other, _ = _online(toy_data, tmp_path, 2, 1, 2, 0.0, 1.0)  # another setting, another student schedule
    cache = tmp_path / "teacher-cache"
    first, first_log = _online(toy_data, tmp_path, 2, 1, 1, 1.0, 0.0, cache=cache)
    assert sorted(p.name for p in cache.iterdir()) == ["teacher_epoch1.pt", "teacher_epoch1_eval.json",
                                                      "teacher_epoch1_steps.json", "teacher_epoch2.pt",
                                                      "teacher_epoch2_eval.json", "teacher_epoch2_steps.json"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again, again_log = _online(toy_data, tmp_path, 1, 2, 1, 0.5, 0.5, cache=cache)  # offline, read from the cache
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == mtimes  # nothing retrained or re-evaluated
    for sd in (offline, other, first, again):
        assert all(torch.equal(online[k], sd[k]) for k in online)
    # the teacher's metrics read from the cache are the ones computed without it
    teacher_rows = [r for r in log if r["model"] == "teacher"]
    assert [r for r in first_log if r["model"] == "teacher"] == teacher_rows
    assert [r for r in again_log if r["model"] == "teacher"] == [dict(r, meta_epoch=1) for r in teacher_rows[1:]]
    assert {(r["meta_epoch"], r["model"]) for r in log} == {(1, "teacher"), (1, "student"), (2, "teacher"), (2, "student")}


def test_positional_cnn_splice_teacher():
    import torch

    from kdlib import models

    torch.manual_seed(0)
    m = models.PositionalCNN(vocab_size=10, seq_len=8).eval()
    ids = torch.randint(2, 10, (3, 8))
    mask = torch.ones_like(ids)
    assert m(ids, mask).shape == (3,)
    short = m(ids[:, :5], mask[:, :5])  # shorter input: padded to seq_len, padding masked out
    padded = m(torch.nn.functional.pad(ids[:, :5], (0, 3)), torch.nn.functional.pad(mask[:, :5], (0, 3)))
    assert torch.allclose(short, padded)
    assert m(torch.randint(2, 10, (2, 12)), torch.ones(2, 12, dtype=torch.long)).shape == (2,)  # truncated
    with pytest.raises(ValueError, match="kernel odd"):
        models.PositionalCNN(10, 8, kernel=4)
