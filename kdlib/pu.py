"""Positive-unlabelled (PU) data from a fully labelled set, seeded and described.

`make_pu` turns a frame with true binary labels into a PU task in the "single training set"
scenario: (1) optionally subsample the classes so the positive share is `prior` (pi), then
(2) label a random fraction `labelled_frac` (c) of the positives (selected completely at random,
"SCAR"); everything else is unlabelled. The true label stays in the frame (for evaluation only).

The positive share of the *unlabelled* part is not pi but

    pi_u = pi (1 - c) / (1 - pi c)        (exactly (P - L) / (N - L) for P positives, L labelled, N rows)

and that is the `prior` nnPU / imbalanced nnPU need (`kdlib.losses`): their unlabelled risk
treats the unlabelled sample as a mixture with positive share `prior`. `make_pu` reports both.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data import check_binary_labels, content_hash


def unlabelled_prior(prior: float, labelled_frac: float) -> float:
    """pi_u = pi (1 - c) / (1 - pi c): the positive share of the unlabelled part when a fraction c
    of the positives of a sample with positive share pi is labelled."""
    if prior is None:
        raise ValueError("prior must be in (0, 1), got None")
    check_pu_args(prior, labelled_frac)
    return prior * (1 - labelled_frac) / (1 - prior * labelled_frac)


def check_pu_args(prior: float | None, labelled_frac: float, n: int | None = None) -> None:
    """Raise ValueError unless prior is None or in (0, 1), labelled_frac in (0, 1], n None or >= 2."""
    if prior is not None and not (isinstance(prior, (int, float)) and 0.0 < prior < 1.0):
        raise ValueError(f"prior must be in (0, 1) (or None to keep the data's own), got {prior!r}")
    if not (isinstance(labelled_frac, (int, float)) and 0.0 < labelled_frac <= 1.0):
        raise ValueError(f"labelled_frac must be in (0, 1], got {labelled_frac!r}")
    if n is not None and (int(n) != n or n < 2):
        raise ValueError(f"n must be an integer >= 2 (or None for as many rows as possible), got {n!r}")


def subsample_to_prior(df: pd.DataFrame, prior: float | None, seed: int, n: int | None = None,
                       label_col: str = "label") -> pd.DataFrame:
    """A seeded subsample whose positive share is `prior` (rounded to whole rows).

    n = None keeps as many rows as possible (every row of the limiting class); otherwise exactly
    n rows. prior = None keeps the data's own share (only subsampling to n, stratified).
    Row order of the input is kept. Raises ValueError when the data cannot supply it.
    """
    check_pu_args(prior, 1.0, n)
    y = df[label_col].to_numpy()
    check_binary_labels(y, label_col)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"need both classes to build a PU set, got {len(pos)} positives, {len(neg)} negatives")
    share = prior if prior is not None else len(pos) / len(y)
    if n is None:
        if prior is None:
            n_pos, n_neg = len(pos), len(neg)
        else:  # the largest sample with this share
            n_pos = int(round(share / (1 - share) * len(neg)))
            if n_pos <= len(pos):  # every negative is kept
                n_neg = len(neg)
            else:                  # every positive is kept
                n_pos, n_neg = len(pos), min(len(neg), int(round(len(pos) * (1 - share) / share)))
    else:
        n_pos = int(round(share * n))
        n_neg = int(n) - n_pos
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"prior {share} with n={n} leaves {n_pos} positives and {n_neg} negatives")
    if n_pos > len(pos) or n_neg > len(neg):
        raise ValueError(f"not enough data for prior {share} and n={n}: need {n_pos} positives "
                         f"(have {len(pos)}) and {n_neg} negatives (have {len(neg)})")
    rng = np.random.default_rng([seed, 1])
    keep = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)]))
    return df.iloc[keep].reset_index(drop=True)


def make_pu(df: pd.DataFrame, prior: float | None, labelled_frac: float, seed: int, n: int | None = None,
            label_col: str = "label") -> tuple[pd.DataFrame, dict]:
    """A PU version of `df`: positive share `prior` (None: the data's own), a fraction
    `labelled_frac` of the positives labelled, `n` rows (None: as many as the prior allows).

    Returns (frame, info). The frame keeps every column of `df` (ids included) and adds
    ``pu_label``: 1 = labelled positive, 0 = unlabelled (positive or negative). info is JSON-able:
    requested and achieved prior, labelled fraction, counts, the unlabelled prior pi_u (pass it
    to nnPU), the seed, and a content hash of the ids and PU labels. Deterministic in `seed`.
    Arguments are checked before anything is computed.
    """
    check_pu_args(prior, labelled_frac, n)
    if label_col not in df.columns:
        raise ValueError(f"make_pu: no {label_col!r} column in {list(df.columns)}")
    out = subsample_to_prior(df, prior, seed, n, label_col)
    y = out[label_col].to_numpy()
    pos = np.flatnonzero(y == 1)
    n_lab = max(1, int(round(labelled_frac * len(pos))))
    rng = np.random.default_rng([seed, 2])
    pu = np.zeros(len(out), dtype=np.int64)
    pu[rng.choice(pos, n_lab, replace=False)] = 1
    out["pu_label"] = pu
    n_rows, n_pos = len(out), int(len(pos))
    achieved_prior = n_pos / n_rows
    info = {
        "prior_requested": prior, "prior": achieved_prior,
        "labelled_frac_requested": labelled_frac, "labelled_frac": n_lab / n_pos,
        "n": n_rows, "n_positive": n_pos, "n_labelled": n_lab, "n_unlabelled": n_rows - n_lab,
        "unlabelled_prior": (n_pos - n_lab) / (n_rows - n_lab),  # = pi (1 - c) / (1 - pi c), achieved
        "unlabelled_prior_formula": "pi_u = pi (1 - c) / (1 - pi c)",
        "seed": seed, "n_requested": n,
        "hash": content_hash(out[["id", "pu_label"]] if "id" in out.columns else out[["pu_label"]]),
    }
    return out, info


# --- the chosen teacher and student of an online PU run, kept ("save S and T") -------------------

MODELS_FILE = "models.json"


def run_models_dir(key: str):
    """cache/pu_models/<key>/: where an online PU run keeps its chosen teacher and student; `key`
    is the run's checkpoint key (<name>-<provenance.run_key(...)>, as cache/pu_runs/ names it)."""
    from . import paths

    return paths.cache_dir() / "pu_models" / key


def save_run_models(folder, teacher, student, spec: dict) -> None:
    """`teacher` and `student`'s weights (teacher.pt, student.pt) and `spec` (models.json: what
    `build_run_models` needs to rebuild them, plus anything the caller records) in `folder`."""
    import json
    from pathlib import Path

    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for who, model in (("teacher", teacher), ("student", student)):
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, folder / f"{who}.pt")
    (folder / MODELS_FILE).write_text(json.dumps(spec, indent=1, default=str))


def build_run_models(spec: dict):
    """Fresh (teacher, student) of the shapes in `spec` (models.json): teacher {"kind": "poscnn",
    "vocab", "seq_len"} or {"kind": "encoder", "name", "attention_dropout"}; student {"arch",
    "hidden", "vocab", "seed"}."""
    from . import models

    t, s = spec["teacher"], spec["student"]
    if t["kind"] == "poscnn":
        teacher = models.PositionalCNN(t["vocab"], seq_len=t["seq_len"])
    elif t["kind"] == "encoder":
        teacher = models.load_teacher(t["name"], attention_dropout=t["attention_dropout"])
    else:
        raise ValueError(f"unknown teacher kind {t['kind']!r} in {MODELS_FILE}")
    return teacher, models.build_student(s["arch"], s["hidden"], s["vocab"], seed=s["seed"])


def load_run_models(run):
    """(teacher, student) of an online PU run (notebooks/online_pu.py), in eval mode on the CPU: the
    models its test metrics come from (chosen by its `select_by`). `run` is a run name
    (results/runs/pu/<run>) or a run's folder; its metrics.json names the folder under
    cache/pu_models/ that holds the weights (`run_models_dir`). Raises FileNotFoundError, saying
    what to rerun, when they are not in this cache (the weights are never committed)."""
    import json
    from pathlib import Path

    import torch

    from . import paths

    run_dir = Path(run) if Path(run).is_dir() else paths.RESULTS / "runs" / "pu" / str(run)
    record = json.loads((run_dir / "metrics.json").read_text())
    folder = run_models_dir(record.get("models_key") or "")
    if "models_key" not in record or not (folder / MODELS_FILE).exists():
        raise FileNotFoundError(f"no saved models of the PU run {run_dir.name} in {folder.parent}: rerun it "
                                "(notebooks/online_pu.py) on this machine to keep its teacher and student")
    teacher, student = build_run_models(json.loads((folder / MODELS_FILE).read_text()))
    for who, model in (("teacher", teacher), ("student", student)):
        model.load_state_dict(torch.load(folder / f"{who}.pt", map_location="cpu", weights_only=True))
        model.eval()
    return teacher, student


def test_metrics(model, val_loader, test_loader, pi: float, device=None, amp: bool = False, who: str = "model"):
    """The test metrics of an online PU run's model, and its test outputs (`train.predict`): the F1
    threshold marks the known prior `pi` of the PU validation set positive
    (`metrics.threshold_for_rate` on the validation logits; no true label), plus F1 at logit 0."""
    from . import metrics, train

    val_out = train.predict(model, val_loader, device, amp, desc=f"{who} val")
    test_out = train.predict(model, test_loader, device, amp, desc=f"{who} test")
    threshold = metrics.threshold_for_rate(val_out["logits"], pi)
    m = metrics.binary_metrics(test_out["labels"], test_out["logits"], threshold=threshold)
    m["threshold"] = threshold
    m["f1_at_0.5"] = metrics.binary_metrics(test_out["labels"], test_out["logits"])["f1"]
    return m, test_out
