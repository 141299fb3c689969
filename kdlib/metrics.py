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


def probabilities(logits, temperature: float = 1.0) -> np.ndarray:
    """sigmoid(z / T) of single logits (N,), the positive-class probability; softmax(z / T) of
    K-class logits (N, K), the class probabilities; in float64."""
    from scipy.special import softmax

    z = np.asarray(logits, dtype=np.float64) / temperature
    return sigmoid(z) if z.ndim == 1 else softmax(z, axis=1)


def _log_loss(labels, probs) -> float:
    classes = [0, 1] if probs.ndim == 1 else list(range(probs.shape[1]))
    return float(skm.log_loss(labels, probs, labels=classes))


def fit_temperature(logits, labels) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the log loss of
    sigmoid(logits / T) (single logits) or softmax(logits / T) (K-class logits) on `labels`,
    fitted on validation; accuracy and ROC-AUC do not change."""
    from scipy.optimize import minimize_scalar

    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels).astype(int)
    k = 2 if z.ndim == 1 else z.shape[-1]
    if z.shape[:1] != y.shape or y.ndim != 1 or z.ndim > 2 or z.size == 0 or not np.isfinite(z).all() \
            or set(np.unique(y)) - set(range(k)):
        raise ValueError("fit_temperature needs finite logits, (N,) or (N, K), and N labels in 0..K-1")

    def nll(log_t):
        return _log_loss(y, probabilities(z, np.exp(log_t)))

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                                        options={"xatol": 1e-6}).x))


def _reliability(y, probs, n_bins):
    """Reliability-diagram bins: of the positive-class probability for single logits (scikit-learn's
    `calibration_curve`, observed positive share), of the top class's probability for K classes
    (observed accuracy). Returns (predicted, observed, count) of the non-empty bins."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    if probs.ndim == 1:
        from sklearn.calibration import calibration_curve

        observed, predicted = calibration_curve(y, probs, n_bins=n_bins, strategy="uniform")
        counts = np.bincount(np.searchsorted(edges, probs), minlength=n_bins)  # calibration_curve's bins
        return predicted, observed, counts[counts > 0]
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    bins = np.searchsorted(edges, conf)
    counts = np.bincount(bins, minlength=n_bins)
    keep = counts > 0
    predicted = np.bincount(bins, conf, n_bins)[keep] / counts[keep]
    observed = np.bincount(bins, correct, n_bins)[keep] / counts[keep]
    return predicted, observed, counts[keep]


def calibration(labels, logits, temperature: float = 1.0, n_bins: int = 15) -> dict:
    """ECE, log loss and Brier score of the probabilities at `temperature` (`probabilities`), and
    the reliability diagram's equal-width bins (`_reliability`: mean predicted probability, observed
    share, count). For K classes the ECE is the top-label one and the Brier score the multi-class
    one (mean over examples of the squared distance to the one-hot label)."""
    y = np.asarray(labels).astype(int)
    probs = probabilities(logits, temperature)
    predicted, observed, counts = _reliability(y, probs, n_bins)
    if probs.ndim == 1:
        ece, brier = expected_calibration_error(y, probs, n_bins), float(skm.brier_score_loss(y, probs))
    else:
        ece = top_label_ece(y, probs, n_bins)
        brier = float(((probs - np.eye(probs.shape[1])[y]) ** 2).sum(axis=1).mean())
    return {"temperature": float(temperature), "ece": ece, "log_loss": _log_loss(y, probs), "brier": brier,
            "bins": {"predicted": predicted.tolist(), "observed": observed.tolist(), "count": counts.tolist()}}


def top_label_ece(labels, probs, n_bins: int = 15) -> float:
    """Top-label ECE of class probabilities (N, K): the |accuracy - confidence| gap of equal-width
    bins of the top class's probability on [0, 1], weighted by bin size (Guo et al. 2017)."""
    predicted, observed, counts = _reliability(np.asarray(labels).astype(int), np.asarray(probs, np.float64), n_bins)
    return float(np.sum(counts * np.abs(observed - predicted)) / np.sum(counts))


def multiclass_metrics(labels, logits, values=None) -> dict[str, float]:
    """accuracy, macro_f1, top2_accuracy, log_loss, top-label ece and n from labels in 0..K-1 and
    raw (N, K) logits (scikit-learn); with `values` (each class's number, e.g. its stars) also
    mae: the mean absolute error of the predicted class's value."""
    y = np.asarray(labels).astype(int)
    probs = probabilities(logits)
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    out = {"accuracy": float(skm.accuracy_score(y, pred)),
           "macro_f1": float(skm.f1_score(y, pred, average="macro", labels=list(range(k)), zero_division=0)),
           "top2_accuracy": float(skm.top_k_accuracy_score(y, probs, k=2, labels=list(range(k)))),
           "log_loss": _log_loss(y, probs), "ece": top_label_ece(y, probs), "n": int(len(y))}
    if values is not None:
        values = np.asarray(values, dtype=np.float64)
        out["mae"] = float(skm.mean_absolute_error(values[y], values[pred]))
    return out


def classification_metrics(labels, logits, values=None) -> dict[str, float]:
    """`binary_metrics` for single logits (N,), `multiclass_metrics` for K-class logits (N, K)."""
    if np.ndim(logits) == 1:
        return binary_metrics(labels, logits)
    return multiclass_metrics(labels, logits, values)


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


def latency_at(model: torch.nn.Module, batch: dict, threads: int = 1, **kwargs) -> dict:
    """`latency` with torch at `threads` CPU threads (restored after), recorded as "threads": models
    trained at different thread counts are then timed alike (a frontier compares them)."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        return latency(model, batch, **kwargs) | {"threads": int(threads)}
    finally:
        torch.set_num_threads(before)


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
