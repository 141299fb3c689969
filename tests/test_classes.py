"""K classes: the softmax KD loss, its reduction to the binary form at K = 2, K-class metrics,
calibration and temperature scaling, datasets, models with a K-way head, the rating labels, and
training a K-class student end to end."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.special import entr, softmax

from kdlib import data, losses, metrics, models, train

from conftest import make_toy_sequences


def tt(v, grad=False):
    return torch.tensor(v, dtype=torch.float64, requires_grad=grad)


S3 = [[1.0, -0.5, 0.2], [0.3, 2.0, -1.0], [-1.2, 0.1, 0.4], [0.0, 0.0, 3.0]]  # student logits, K = 3
T3 = [[2.0, 0.5, -1.0], [-0.4, 1.5, 0.9], [0.2, -0.3, 1.1], [1.0, -2.0, 0.5]]  # teacher logits
Y3 = [0, 1, 2, 1]


def np_softmax_kd(s, t, y, T, alpha):
    """(1 - alpha) CE(s, y) + alpha T^2 KL(softmax(t/T) || softmax(s/T)), batch means, in numpy."""
    s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
    p, q = softmax(t / T, axis=1), softmax(s / T, axis=1)
    kl = (p * np.log(p / q)).sum(axis=1)
    ce = -np.log(softmax(s, axis=1)[np.arange(len(y)), y])
    return (1 - alpha) * ce.mean() + alpha * T * T * kl.mean()


# (T, alpha, expected): computed once with np_softmax_kd above
SOFTMAX_KD_CASES = [(1.0, 0.5, 0.8118083427457423), (2.0, 0.5, 0.8691735810325291),
                    (4.0, 1.0, 0.6593431321686842), (2.0, 0.0, 1.1205812851293824)]


@pytest.mark.parametrize("T,alpha,expected", SOFTMAX_KD_CASES)
def test_softmax_kd_loss_precomputed_values(T, alpha, expected):
    got = losses.softmax_kd_loss(tt(S3), tt(T3), torch.tensor(Y3), T=T, alpha=alpha).item()
    assert got == pytest.approx(expected, rel=1e-10)
    assert got == pytest.approx(np_softmax_kd(S3, T3, Y3, T, alpha), rel=1e-10)


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (2.0, 0.3), (4.0, 1.0), (2.0, 0.0), (8.0, 0.9)])
def test_softmax_kd_at_two_classes_is_exactly_the_binary_kd_loss(T, alpha):
    """Logits (0, z) for student and teacher: the K-class loss and its gradient are the binary ones,
    with unlabelled examples (-1) in the batch and with given target probabilities."""
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(24, generator=g, dtype=torch.float64) * 3, torch.randn(24, generator=g, dtype=torch.float64) * 3
    y = (torch.rand(24, generator=g) < 0.5).long()
    if alpha > 0:
        y[::5] = -1
    s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
    binary = losses.kd_loss(s1, t, y.double(), T=T, alpha=alpha)
    two = losses.softmax_kd_loss(torch.stack([torch.zeros_like(s2), s2], 1), torch.stack([torch.zeros_like(t), t], 1),
                                 y, T=T, alpha=alpha)
    assert two.item() == pytest.approx(binary.item(), rel=1e-12, abs=1e-14)
    binary.backward()
    two.backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-10, atol=1e-14)
    if alpha > 0:  # the target-probability slot (hard labels, smoothed labels)
        p = torch.sigmoid(t)
        got = losses.softmax_kd_loss(torch.stack([torch.zeros_like(s), s], 1), None, y, T=T, alpha=alpha,
                                     target_prob=torch.stack([1 - p, p], 1))
        want = losses.kd_loss(s, None, y.double(), T=T, alpha=alpha, target_prob=p)
        assert got.item() == pytest.approx(want.item(), rel=1e-12)


def test_softmax_kd_loss_rules():
    s = tt(S3, grad=True)
    assert losses.softmax_kd_loss(s, s.detach(), None, T=3.0, alpha=1.0).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="labels are needed"):
        losses.softmax_kd_loss(s, tt(T3), None, alpha=0.5)
    with pytest.raises(ValueError, match="need alpha > 0"):
        losses.softmax_kd_loss(s, None, torch.tensor([0, -1, 1, 2]), alpha=0.0)
    with pytest.raises(ValueError, match="teacher logits"):
        losses.softmax_kd_loss(s, None, torch.tensor(Y3), alpha=0.5)
    with pytest.raises(ValueError, match="batch, classes"):
        losses.softmax_kd_loss(tt([1.0, 2.0]), tt([1.0, 2.0]), tt([0.0, 1.0]))
    with pytest.raises(ValueError, match="temperature"):
        losses.softmax_kd_loss(s, tt(T3), torch.tensor(Y3), T=0)
    t = tt(T3, grad=True)
    losses.softmax_kd_loss(s, t, torch.tensor(Y3), T=2.0, alpha=0.5).backward()
    assert t.grad is None and s.grad is not None  # no gradient reaches the teacher


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_collapse_to_binary_is_the_positive_classes_probability(T):
    t = torch.tensor(T3, dtype=torch.float64) * 3
    positive = [False, True, True]
    z = losses.collapse_to_binary(t, positive, T)
    want = torch.softmax(t / T, dim=1)[:, 1:].sum(1)
    torch.testing.assert_close(torch.sigmoid(z / T), want, rtol=1e-12, atol=1e-14)
    two = torch.tensor([[0.0, 1.5], [0.0, -2.0]], dtype=torch.float64)  # at K = 2: the single logit itself
    torch.testing.assert_close(losses.collapse_to_binary(two, [False, True], T), two[:, 1])
    with pytest.raises(ValueError, match="both sides"):
        losses.collapse_to_binary(t, [True, True, True], T)


def test_matched_smoothing_for_k_classes():
    rng = np.random.default_rng(0)
    t = rng.normal(0, 3, (500, 8))
    for T in (1.0, 4.0):
        eps = losses.matched_smoothing(t, T)
        assert 0 < eps < 1
        assert losses.smoothed_entropy(eps, 8) == pytest.approx(entr(softmax(t / T, axis=1)).sum(1).mean(), rel=1e-9)
    z = rng.normal(0, 3, 300)  # two classes as (0, z): the same epsilon as the single logit z
    assert losses.matched_smoothing(np.stack([np.zeros_like(z), z], 1), 2.0) == pytest.approx(
        losses.matched_smoothing(z, 2.0), abs=1e-10)
    assert losses.smoothed_entropy(0.3, 2) == pytest.approx(float(losses.binary_entropy(1 - 0.15)), rel=1e-12)
    assert losses.matched_smoothing(np.zeros((4, 5)), 1.0) == 1.0  # a uniform teacher: fully smoothed


def test_multiclass_metrics_hand_values():
    y = np.array([0, 1, 2, 2])
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]]))
    m = metrics.multiclass_metrics(y, logits, values=[1, 5, 10])
    assert m["accuracy"] == 0.5 and m["n"] == 4
    assert m["top2_accuracy"] == 1.0  # every true class is in its row's top two
    assert m["macro_f1"] == pytest.approx(np.mean([2 / 3, 0.0, 2 / 3]))
    assert m["mae"] == pytest.approx((0 + 4 + 0 + 5) / 4)  # predicted 0, 0, 2, 1 against 0, 1, 2, 2
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.3, 0.6, 0.3])))
    assert metrics.classification_metrics(y, logits)["accuracy"] == 0.5 and "mae" not in metrics.classification_metrics(y, logits)
    assert "roc_auc" in metrics.classification_metrics([0, 1], [-1.0, 2.0])  # single logits: the binary metrics


def test_top_label_ece_hand_value():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    # bins of confidence: 0.9 (2 examples, accuracy 0.5), 0.6 (1, accuracy 1), 0.7 (1, accuracy 1)
    want = (2 * abs(0.5 - 0.9) + abs(1 - 0.6) + abs(1 - 0.7)) / 4
    assert metrics.top_label_ece(y, probs) == pytest.approx(want)


def test_temperature_scaling_and_calibration_for_k_classes():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 1.5, (20000, 5))
    y = np.array([rng.choice(5, p=p) for p in softmax(true, axis=1)])
    T = metrics.fit_temperature(3 * true, y)
    assert T == pytest.approx(3.0, rel=0.05)
    raw, scaled = metrics.calibration(y, 3 * true), metrics.calibration(y, 3 * true, T)
    assert scaled["ece"] < raw["ece"] and scaled["log_loss"] < raw["log_loss"] and scaled["brier"] < raw["brier"]
    assert sum(scaled["bins"]["count"]) == len(y)
    assert len(scaled["bins"]["count"]) == len(scaled["bins"]["predicted"]) == len(scaled["bins"]["observed"])
    with pytest.raises(ValueError, match="labels in 0..K-1"):
        metrics.fit_temperature(true[:3], [0, 1, 7])


def test_class_dataset_checks_its_labels():
    seqs, _ = make_toy_sequences(6)
    ds = data.ClassDataset(seqs, [0, 7, 3, 2, 1, 5], n_classes=8)
    assert ds.labels.tolist() == [0, 7, 3, 2, 1, 5] and len(ds) == 6
    batch = next(iter(data.make_loader(ds, 6, shuffle=False)))
    assert sorted(batch["labels"].long().tolist()) == [0, 1, 2, 3, 5, 7]
    with pytest.raises(ValueError, match="classes 0..7"):
        data.ClassDataset(seqs, [0, 8, 3, 2, 1, 5], n_classes=8)
    with pytest.raises(ValueError, match="classes 0..7"):
        data.ClassDataset(seqs, [0, -1, 3, 2, 1, 5], n_classes=8)
    assert data.ClassDataset(seqs, [0, -1, 3, 2, 1, 5], n_classes=8, allow_unlabelled=True).labels[1] == -1
    with pytest.raises(ValueError, match="empty token sequence"):
        data.ClassDataset([np.array([], np.int32)] + seqs[1:], [0] * 6, n_classes=3)


def _fake_imdb(folder, n=12):
    rng = np.random.default_rng(0)
    stars = rng.choice(data.RATING_STARS, n)
    df = pd.DataFrame({"text": [f"review {i} " * 3 for i in range(n)], "label": (stars >= 7).astype(np.int64),
                       "review_id": np.arange(n, dtype=np.int32), "rating": stars.astype(np.int8)})
    (folder / "imdb").mkdir(parents=True)
    for split in ("train", "test"):
        df.to_parquet(folder / "imdb" / f"{split}.parquet")
    return df


def test_with_rating_labels_reads_the_local_stars(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    raw = _fake_imdb(tmp_path / "data")
    imdb = data.load_imdb(("train", "test"), source="local", verbose=False, drop_test_duplicates=False)
    part = imdb["train"].iloc[[7, 2, 9]].reset_index(drop=True)  # a shuffled subset keeps its ids
    rated = data.with_rating_labels(part, "train")
    assert rated["stars"].tolist() == raw["rating"].iloc[[7, 2, 9]].tolist()
    assert [data.RATING_STARS[c] for c in rated["label"]] == rated["stars"].tolist()
    assert rated.attrs["source"] == part.attrs["source"] and part["label"].isin([0, 1]).all()  # the input is untouched
    hub = part.copy()
    hub.attrs["source"] = "hub: stanfordnlp/imdb"
    with pytest.raises(ValueError, match="local IMDB files"):
        data.with_rating_labels(hub, "train")
    wrong = part.assign(text=["something else"] * 3)
    with pytest.raises(ValueError, match="reviews differ"):
        data.with_rating_labels(wrong, "train")


@pytest.mark.parametrize("arch", models.ARCHS)
def test_with_classes_gives_a_k_way_head_and_keeps_the_body(arch):
    binary = models.build_student(arch, 16, 30, seed=3)
    eight = models.with_classes(models.build_student(arch, 16, 30, seed=3), 8, seed=3)
    again = models.with_classes(models.build_student(arch, 16, 30, seed=3), 8, seed=3)
    ids = torch.randint(1, 30, (4, 9))
    out = eight.eval()(ids, torch.ones_like(ids))
    assert out.shape == (4, 8)
    for (name, p), (_, q) in zip(binary.named_parameters(), eight.named_parameters()):
        if not name.startswith("head"):
            torch.testing.assert_close(p, q, rtol=0, atol=0)  # the body is the binary twin's
    for p, q in zip(eight.parameters(), again.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # the head depends on the seed alone
    with pytest.raises(ValueError, match="n_classes"):
        models.with_classes(models.build_student(arch, 16, 30, seed=3), 1, seed=3)
    with pytest.raises(ValueError, match="one-logit output layer"):
        models.with_classes(eight, 4, seed=3)


def test_kd_objective_for_k_classes():
    ids = np.arange(4)
    teacher = data.TeacherLogits(ids, np.array(T3, np.float32))
    s = torch.tensor(S3, dtype=torch.float32, requires_grad=True)
    batch = {"ids": torch.tensor(ids), "labels": torch.tensor(Y3, dtype=torch.float32)}
    soft = train.kd_objective(teacher, 2.0, 0.5)(s, batch)
    assert soft.item() == pytest.approx(np_softmax_kd(S3, T3, Y3, 2.0, 0.5), rel=1e-5)
    ce = train.kd_objective(teacher, 1.0, 0.0)(s, batch)
    assert ce.item() == pytest.approx(F.cross_entropy(s, torch.tensor(Y3)).item(), rel=1e-6)
    hard = train.kd_objective(teacher, 1.0, 1.0, targets="hard")(s, batch)  # the teacher's argmax: 0, 1, 2, 0
    assert hard.item() == pytest.approx(F.cross_entropy(s, torch.tensor([0, 1, 2, 0])).item(), rel=1e-6)
    eps = 0.3
    smoothed = train.kd_objective(teacher, 1.0, 1.0, targets="smoothed", smoothing=eps)(s, batch)
    p = np.eye(3)[Y3] * (1 - eps) + eps / 3
    want = (entr(p).sum(1) * -1 - (p * np.log(softmax(np.array(S3), axis=1))).sum(1)).mean()
    assert smoothed.item() == pytest.approx(want, rel=1e-5)


def test_a_k_class_student_trains_and_validates(tmp_path):
    """fit on 3-class toy data: (B, 3) logits, K-class validation metrics, the best epoch kept."""
    seqs, _ = make_toy_sequences(192, seed=0, marker=5)
    labels = np.array([0 if 5 in s else (1 if 6 in s else 2) for s in seqs])
    ds = data.ClassDataset(seqs, labels, n_classes=3)
    student = models.with_classes(models.build_student("cnn", 16, 20, seed=0), 3, seed=0)
    loader = data.make_loader(ds, 32, seed=0)
    history = train.fit(student, loader, data.make_loader(ds, 64, shuffle=False), train.bce_objective(), epochs=4,
                        lr=0.01, select="accuracy", ckpt_dir=tmp_path / "ck")
    last = history["epochs"][-1]
    assert {"val_accuracy", "val_macro_f1", "val_top2_accuracy"} <= set(last) and "val_roc_auc" not in last
    assert history["best_score"] > 0.6  # well above the majority share
    out = train.predict(student, data.make_loader(ds, 64, shuffle=False))
    assert out["logits"].shape == (192, 3)


def test_imdb_splits_are_the_teacher_splits_with_subsets_and_star_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "data" / "imdb"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", 400), ("test", 300)):
        stars = rng.choice(data.RATING_STARS, n)
        pd.DataFrame({"text": [f"{split} review number {i}" for i in range(n)], "label": (stars >= 7).astype(np.int64),
                      "review_id": np.arange(n, dtype=np.int32), "rating": stars.astype(np.int8)}).to_parquet(folder / f"{split}.parquet")
    full = data.imdb_splits(val_frac=0.1, split_seed=0)
    assert (len(full["train"]), len(full["val"]), len(full["test"])) == (360, 40, 300)
    assert not set(full["train"].id) & set(full["val"].id)
    sub = data.imdb_splits(val_frac=0.1, split_seed=0, train_subset=100, test_subset=50)
    assert (len(sub["train"]), len(sub["val"]), len(sub["test"])) == (100, 40, 50)  # validation: max(64, 25), at most all 40
    assert set(sub["train"].id) <= set(full["train"].id)
    rated = data.imdb_splits(val_frac=0.1, split_seed=0, task="rating")
    for s in full:
        assert rated[s]["id"].tolist() == full[s]["id"].tolist()  # the same reviews, in the same order
        assert rated[s]["label"].between(0, 7).all() and ((rated[s]["stars"] >= 7) == (full[s]["label"] == 1)).all()
    with pytest.raises(ValueError, match="task must be one of"):
        data.imdb_splits(task="stars")


def test_teacher_splits_rebuilds_a_runs_splits_and_refuses_other_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "data" / "imdb"
    folder.mkdir(parents=True)

    def write(prefix):
        for split, n in (("train", 200), ("test", 100)):
            pd.DataFrame({"text": [f"{prefix} {split} review {i}" for i in range(n)], "label": np.arange(n) % 2,
                          "rating": np.where(np.arange(n) % 2, 8, 2).astype(np.int8)}).to_parquet(folder / f"{split}.parquet")

    write("first")
    params = {"val_frac": 0.1, "split_seed": 3, "train_subset": 80, "test_subset": None, "task": "binary"}
    splits = data.imdb_splits(0.1, 3, 80, None)
    run = {"params": params, "logits": {s: {"data_hash": data.content_hash(df[["id", "text"]])} for s, df in splits.items()}}
    got = data.teacher_splits(run, "t")
    assert all(got[s]["id"].tolist() == splits[s]["id"].tolist() for s in splits)
    assert list(data.teacher_splits(run, "t", ("train", "val"))) == ["train", "val"]
    with pytest.raises(ValueError, match="no logits for the transfer split"):
        data.teacher_splits(run, "t", ("transfer",))
    write("second")  # other reviews under the same parameters: the recorded hashes no longer match
    with pytest.raises(ValueError, match="the train split differs from the one teacher 't' was trained on"):
        data.teacher_splits(run, "t")
