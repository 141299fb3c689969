"""kdlib.metrics against scikit-learn and hand-computed values."""
import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from kdlib import data, metrics, models

LABELS = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0])
LOGITS = np.array([2.1, -1.3, 0.4, -0.2, 0.3, -2.5, 1.7, 0.05, -0.8, -0.1])


def test_sigmoid():
    np.testing.assert_allclose(metrics.sigmoid([0.0, np.log(3.0)]), [0.5, 0.75])


def test_binary_metrics_against_sklearn():
    m = metrics.binary_metrics(LABELS, LOGITS)
    probs = 1 / (1 + np.exp(-LOGITS))
    pred = (LOGITS >= 0).astype(int)
    assert pred.tolist() == [1, 0, 1, 0, 1, 0, 1, 1, 0, 0]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(LABELS, pred)) == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(skm.precision_score(LABELS, pred)) == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(skm.recall_score(LABELS, pred)) == pytest.approx(3 / 5)
    assert m["f1"] == pytest.approx(skm.f1_score(LABELS, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(LABELS, probs))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(LABELS, probs))
    assert m["positive_rate"] == pytest.approx(0.5)
    assert m["n"] == 10
    assert m["ece"] == pytest.approx(metrics.expected_calibration_error(LABELS, probs))
    # a different threshold changes the hard-label metrics only
    m2 = metrics.binary_metrics(LABELS, LOGITS, threshold=0.6)
    assert m2["positive_rate"] == pytest.approx(0.2) and m2["roc_auc"] == m["roc_auc"]


def test_binary_metrics_perfect_predictions():
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    m = metrics.binary_metrics(labels, np.where(labels == 1, 12.0, -12.0))
    assert m["accuracy"] == 1.0 and m["f1"] == 1.0 and m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert 0 <= m["ece"] < 1e-4


def test_binary_metrics_single_class_gives_nan_auc():
    m = metrics.binary_metrics([1, 1, 1], [0.5, 1.0, -1.0])
    assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"])
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_ece_hand_computed_two_bins():
    # probs 0.95, 0.15, 0.60, 0.30; labels 1, 1, 0, 0
    # confidence 0.95, 0.85, 0.60, 0.70; correct 1, 0, 0, 1
    # 2 bins over confidence [0.5, 1]: high {0.95, 0.85}: |0.5 - 0.90| = 0.40; low {0.60, 0.70}: |0.5 - 0.65| = 0.15
    # ECE = 0.5 * 0.40 + 0.5 * 0.15 = 0.275
    ece = metrics.expected_calibration_error([1, 1, 0, 0], [0.95, 0.15, 0.60, 0.30], n_bins=2)
    assert ece == pytest.approx(0.275, abs=1e-12)


def test_ece_hand_computed_separate_bins():
    # probs 0.95, 0.15, 0.65, 0.25; labels 1, 1, 0, 0 -> confidence 0.95, 0.85, 0.65, 0.75,
    # correct 1, 0, 0, 1, each alone in one of 5 bins: (0.05 + 0.85 + 0.65 + 0.25) / 4 = 0.45
    ece = metrics.expected_calibration_error([1, 1, 0, 0], [0.95, 0.15, 0.65, 0.25], n_bins=5)
    assert ece == pytest.approx(0.45, abs=1e-12)


def test_ece_perfect_calibration_and_confidence_one():
    assert metrics.expected_calibration_error([1, 0, 1], [1.0, 0.0, 1.0]) == 0.0
    assert metrics.expected_calibration_error([0, 1], [1.0, 0.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.77])
def test_threshold_for_rate(rate):
    logits = np.random.default_rng(0).normal(size=200) * 2
    th = metrics.threshold_for_rate(logits, rate)
    assert 0 < th < 1
    share = (metrics.sigmoid(logits) >= th).mean()
    assert share == pytest.approx(rate, abs=1 / 200)


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.5, 2.0])
def test_threshold_for_rate_rejects_bad_rate(rate):
    with pytest.raises(ValueError):
        metrics.threshold_for_rate([0.1, 0.2], rate)


def test_best_f1_threshold():
    labels = np.array([0, 0, 1, 1, 1, 0])
    logits = np.array([-2.0, -1.0, 0.5, 1.0, 2.0, 0.2])
    th = metrics.best_f1_threshold(labels, logits)
    # the best cut separates perfectly: everything with logit >= 0.5 is positive
    pred = (metrics.sigmoid(logits) >= th).astype(int)
    assert skm.f1_score(labels, pred) == 1.0
    assert th == pytest.approx(metrics.sigmoid(0.5))


def test_model_size():
    m = models.build_student("gru", 16, 30, seed=0, emb_dim=8)
    size = metrics.model_size(m)
    n = sum(p.numel() for p in m.parameters())
    assert size["params"] == n == models.count_parameters(m)["total"]
    assert size["size_mb"] == pytest.approx(n * 4 / 2**20) and size["size_mb"] > 0
    bn = torch.nn.BatchNorm1d(4)  # buffers count towards the size
    assert metrics.model_size(bn)["size_mb"] * 2**20 == pytest.approx(8 * 4 + 8 * 4 + 8)


def test_latency_positive_and_restores_mode():
    m = models.build_student("cnn", 16, 30, seed=0, emb_dim=8)
    m.train()
    batch = data.Collate()([(np.arange(2, 2 + n), 0, i) for i, n in enumerate((6, 3, 9, 4))])
    out = metrics.latency(m, batch, repeats=3, warmup=1)
    assert out["batch_size"] == 4
    assert out["ms_per_example_batch1"] > 0 and out["ms_per_example_batched"] > 0
    assert m.training


def test_latency_at_times_at_the_given_threads_and_restores_them(monkeypatch):
    m = models.build_student("cnn", 16, 30, seed=0, emb_dim=8)
    batch = data.Collate()([(np.arange(2, 2 + n), 0, i) for i, n in enumerate((6, 3, 9, 4))])
    seen = []
    real = metrics.latency

    def spy(model, b, **kw):
        seen.append(torch.get_num_threads())
        return real(model, b, **kw)

    monkeypatch.setattr(metrics, "latency", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = metrics.latency_at(m, batch, 1, repeats=2, warmup=1)
        assert seen == [1] and out["threads"] == 1 and out["batch_size"] == 4
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)


def test_busy_seconds_counts_overlaps_once():
    assert metrics.busy_seconds([]) == 0.0
    assert metrics.busy_seconds([(0, 10)]) == 10.0
    # two side by side (overlap 5), one nested, a gap, then one touching the next
    assert metrics.busy_seconds([(0, 10), (5, 20), (6, 7), (30, 40), (40, 45)]) == 35.0
    assert metrics.busy_seconds([(30, 40), (0, 10)]) == 20.0  # order does not matter
    with pytest.raises(ValueError):
        metrics.busy_seconds([(5, 1)])
