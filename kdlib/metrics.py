"""Metrics: classification quality from scikit-learn, calibration, latency, model size."""
from __future__ import annotations

import numpy as np
import torch
from sklearn import metrics as skm


def sigmoid(z) -> np.ndarray:
    """scipy's `expit`, in float64."""
    from scipy.special import expit

    return expit(np.asarray(z, dtype=np.float64))


def expected_calibration_error(labels, probs, n_bins: int = 15) -> float:
    """ECE: the |accuracy - confidence| gap of equal-width confidence bins, weighted by bin size,
    where confidence is max(p, 1 - p) and a prediction is correct when (p >= 0.5) == label."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    conf = np.maximum(probs, 1 - probs)
    correct = ((probs >= 0.5).astype(int) == labels).astype(float)
    bins = np.minimum(((conf - 0.5) / 0.5 * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def fit_temperature(logits, labels) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the log loss of
    sigmoid(logits / T) on `labels`, fitted on validation; accuracy and ROC-AUC do not change."""
    from scipy.optimize import minimize_scalar

    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels).astype(int)
    if z.shape != y.shape or z.size == 0 or not np.isfinite(z).all() or set(np.unique(y)) - {0, 1}:
        raise ValueError("fit_temperature needs finite logits and 0/1 labels of the same non-empty shape")

    def nll(log_t):
        return skm.log_loss(y, sigmoid(z / np.exp(log_t)), labels=[0, 1])

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                                        options={"xatol": 1e-6}).x))


def calibration(labels, logits, temperature: float = 1.0, n_bins: int = 15) -> dict:
    """ECE, log loss and Brier score of sigmoid(logits / temperature), and the reliability
    diagram's bins (scikit-learn's `calibration_curve`, equal-width bins of the positive-class
    probability: mean predicted probability, observed positive share, count)."""
    from sklearn.calibration import calibration_curve

    y = np.asarray(labels).astype(int)
    probs = sigmoid(np.asarray(logits, dtype=np.float64) / temperature)
    observed, predicted = calibration_curve(y, probs, n_bins=n_bins, strategy="uniform")
    # the bin of each example as calibration_curve draws it (its "uniform" edges), for the counts
    counts = np.bincount(np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], probs), minlength=n_bins)
    return {"temperature": float(temperature), "ece": expected_calibration_error(y, probs, n_bins),
            "log_loss": float(skm.log_loss(y, probs, labels=[0, 1])), "brier": float(skm.brier_score_loss(y, probs)),
            "bins": {"predicted": predicted.tolist(), "observed": observed.tolist(),
                     "count": counts[counts > 0].tolist()}}


def binary_metrics(labels, logits, threshold: float = 0.5) -> dict[str, float]:
    """accuracy, precision, recall, f1 (at probability `threshold`), roc_auc, pr_auc (average
    precision), ece, positive_rate and n, from labels in {0, 1} and raw logits."""
    labels = np.asarray(labels).astype(int)
    probs = sigmoid(logits)
    pred = (probs >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "precision": float(skm.precision_score(labels, pred, zero_division=0)),
        "recall": float(skm.recall_score(labels, pred, zero_division=0)),
        "f1": float(skm.f1_score(labels, pred, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(labels, probs)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(labels, probs)) if both else float("nan"),
        "ece": expected_calibration_error(labels, probs),
        "positive_rate": float(pred.mean()),
        "n": int(len(labels)),
    }


def threshold_for_rate(logits, rate: float) -> float:
    """The probability threshold that marks a share `rate` of the examples positive (e.g. the known
    class prior in PU learning, where validation has no true negatives)."""
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    return float(np.quantile(sigmoid(logits), 1 - rate))


def best_f1_threshold(labels, logits) -> float:
    """The probability threshold that maximises F1 on (validation) labels."""
    p, r, th = skm.precision_recall_curve(np.asarray(labels).astype(int), sigmoid(logits))
    f1 = 2 * p[:-1] * r[:-1] / np.clip(p[:-1] + r[:-1], 1e-12, None)
    return float(th[int(np.argmax(f1))])


def model_size(model: torch.nn.Module) -> dict[str, float]:
    """Parameter count and size in MB (fp32 parameters and buffers)."""
    n = sum(p.numel() for p in model.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers())
    return {"params": int(n), "size_mb": nbytes / 2**20}


@torch.no_grad()
def latency(model: torch.nn.Module, batch: dict, repeats: int = 20, warmup: int = 3) -> dict[str, float]:
    """Inference latency in ms per example: batch size 1 (first example of `batch`) and the whole
    `batch` at once. Median of `repeats` timed calls (`torch.utils.benchmark.Timer`, which
    synchronises CUDA itself) after `warmup` calls."""
    from torch.utils import benchmark

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    n1 = int(mask[0].sum())

    def timeit(i, m):
        for _ in range(warmup):
            model(i, m)
        timer = benchmark.Timer(stmt="model(i, m)", globals={"model": model, "i": i, "m": m},
                                num_threads=torch.get_num_threads())
        return float(np.median([timer.timeit(1).mean for _ in range(repeats)])) * 1000

    out = {"ms_per_example_batch1": timeit(ids[:1, :n1], mask[:1, :n1]),
           "ms_per_example_batched": timeit(ids, mask) / len(ids), "batch_size": int(len(ids))}
    model.train(was_training)
    return out


def busy_seconds(intervals) -> float:
    """Wall-clock seconds covered by at least one (start, end) interval: runs side by side count once.

    The study's wall clock from each run's recorded execution, however many ran at a time.
    """
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted((float(s), float(e)) for s, e in intervals):
        if end < start:
            raise ValueError(f"interval ends before it starts: ({start}, {end})")
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    return total + (cur_end - cur_start if cur_end is not None else 0.0)
