"""Positive-unlabelled (PU) data from a fully labelled set, seeded and described.

`make_pu` turns a frame with true binary labels into a PU task in the "single training set"
scenario: (1) optionally subsample the classes so the positive share is `prior` (pi), then
(2) label a fraction `labelled_frac` (c) of the positives, by default selected completely at random
("SCAR"), or (`labelling="sar"`) selected at random with a propensity that rises with an attribute
of the example ("SAR", `sar_propensity`); everything else is unlabelled. The true label stays in
the frame (for evaluation only).

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


LABELLINGS = ("scar", "sar")  # how the labelled positives are drawn (make_pu)
# the attributes a SAR labelling can rise with, per dataset of notebooks/online_pu.py (`add_sar_attribute`)
SAR_ATTRIBUTES = {"splice": ("gc",), "imdb": ("stars", "length")}
SAR_FORMULA = ("w_i = exp(k z_i), z_i the standardised mid-rank of the attribute among the positives; "
               "n_lab drawn without replacement, each draw with probability w_i / sum of the w left")


def check_sar_args(df: pd.DataFrame, labelling: str, sar_by: str | None, sar_strength: float,
                   label_col: str = "label") -> None:
    """Raise ValueError unless the labelling arguments of `make_pu` make sense for `df`: SCAR takes
    no attribute (nor a strength other than 1, which it would ignore); SAR a finite numeric column
    of `df`, not constant over the positives, and a finite strength > 0."""
    if labelling not in LABELLINGS:
        raise ValueError(f"labelling must be one of {LABELLINGS}, got {labelling!r}")
    if labelling == "scar":  # refused rather than silently unused
        if sar_by is not None:
            raise ValueError(f"sar_by must be None with labelling='scar' (it is SAR's attribute), got {sar_by!r}")
        if sar_strength != 1.0:
            raise ValueError(f"sar_strength must be 1.0 with labelling='scar' (it is SAR's), got {sar_strength!r}")
        return
    if not isinstance(sar_by, str) or sar_by not in df.columns:
        raise ValueError(f"sar_by must name a column of the frame {list(df.columns)} with labelling='sar', got {sar_by!r}")
    if (isinstance(sar_strength, bool) or not isinstance(sar_strength, (int, float))
            or not np.isfinite(sar_strength) or sar_strength <= 0):
        raise ValueError(f"sar_strength must be a finite number > 0, got {sar_strength!r}")
    if not pd.api.types.is_numeric_dtype(df[sar_by]) or pd.api.types.is_bool_dtype(df[sar_by]):
        raise ValueError(f"sar_by must name a numeric column, got {sar_by!r} of dtype {df[sar_by].dtype}")
    values = df[sar_by].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"sar_by column {sar_by!r} must hold finite values only, got "
                         f"{int((~np.isfinite(values)).sum())} NaN or infinite")
    on_positives = values[df[label_col].to_numpy() == 1]
    if len(on_positives) and on_positives.min() == on_positives.max():  # it would be SCAR under another name
        raise ValueError(f"sar_by column {sar_by!r} must vary over the positives (it is constant there): "
                         "a constant attribute gives no selection bias")


def sar_propensity(attribute: np.ndarray, strength: float) -> np.ndarray:
    """Relative labelling weights w_i = exp(k z_i) of the positives, k = `strength`, z_i the
    mid-rank of `attribute` among them standardised to mean 0 and sd 1 (0 where it is constant).

    Ranks rather than raw values so that a skewed attribute (review length) gives the same
    range of weights as a symmetric one: w spans at most exp(+-k sqrt(3)), a ratio of ~32 at
    k = 1; ties (star ratings) share a weight. k -> 0 gives equal weights, i.e. SCAR. This is
    the selected-at-random setting of Bekker & Davis (2020, "Learning from positive and unlabeled
    data: a survey", Mach. Learn. 109: the propensity e(x) = P(labelled | positive, x) depends
    on x), here through one monotone attribute."""
    ranks = pd.Series(attribute).rank(method="average").to_numpy()
    sd = ranks.std()
    z = (ranks - ranks.mean()) / sd if sd > 0 else np.zeros(len(ranks))
    return np.exp(strength * z)


def _draw_labelled(rng: np.random.Generator, pos: np.ndarray, n_lab: int, weights: np.ndarray) -> np.ndarray:
    """n_lab of `pos` without replacement, each successive draw with probability proportional to
    the weights left: Efraimidis & Spirakis (2006) keys log(u) / w, the n_lab largest. Written out
    rather than rng.choice(p=...) so that the draw does not hang on numpy's internal algorithm."""
    keys = np.log(rng.random(len(pos))) / weights
    return pos[np.argsort(-keys, kind="stable")[:n_lab]]


def make_pu(df: pd.DataFrame, prior: float | None, labelled_frac: float, seed: int, n: int | None = None,
            label_col: str = "label", labelling: str = "scar", sar_by: str | None = None,
            sar_strength: float = 1.0) -> tuple[pd.DataFrame, dict]:
    """A PU version of `df`: positive share `prior` (None: the data's own), a fraction
    `labelled_frac` of the positives labelled, `n` rows (None: as many as the prior allows).

    `labelling`: "scar" (default) labels n_lab = round(c n_pos) positives uniformly at random;
    "sar" labels as many, drawn with weights w_i = exp(k z_i) rising with the column `sar_by`
    (z_i its standardised mid-rank among the positives, k = `sar_strength`; `sar_propensity`),
    without replacement. The weights are computed on the positives of this sample, so a
    validation set built the same way is labelled by the same rule.

    Returns (frame, info). The frame keeps every column of `df` (ids included) and adds
    ``pu_label``: 1 = labelled positive, 0 = unlabelled (positive or negative). info is JSON-able:
    requested and achieved prior, labelled fraction, counts, the unlabelled prior pi_u (pass it
    to nnPU), the seed, and a content hash of the ids and PU labels; with SAR also the labelling,
    attribute, strength, the attribute's mean over the labelled and over all positives (the bias)
    and the range of the propensities c w_i / mean(w) (each positive's labelling probability if
    positives were labelled independently at the same expected count; SCAR: c for all; above 1
    where the bias is strong). A SCAR info is the one it was before SAR existed. Deterministic
    in `seed`. Arguments are checked before anything is computed.
    """
    check_pu_args(prior, labelled_frac, n)
    if label_col not in df.columns:
        raise ValueError(f"make_pu: no {label_col!r} column in {list(df.columns)}")
    check_sar_args(df, labelling, sar_by, sar_strength, label_col)
    out = subsample_to_prior(df, prior, seed, n, label_col)
    y = out[label_col].to_numpy()
    pos = np.flatnonzero(y == 1)
    n_lab = max(1, int(round(labelled_frac * len(pos))))
    rng = np.random.default_rng([seed, 2])
    pu = np.zeros(len(out), dtype=np.int64)
    if labelling == "scar":  # the draw of every run before SAR: keep it call for call
        labelled = rng.choice(pos, n_lab, replace=False)
    else:
        attribute = out[sar_by].to_numpy(dtype=float)[pos]
        weights = sar_propensity(attribute, sar_strength)
        labelled = _draw_labelled(rng, pos, n_lab, weights)
    pu[labelled] = 1
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
    if labelling == "sar":  # a SCAR info stays as it was (committed runs' records compare equal)
        propensity = (n_lab / n_pos) * weights / weights.mean()
        info.update(labelling=labelling, sar_by=sar_by, sar_strength=sar_strength, sar_formula=SAR_FORMULA,
                    sar_mean_labelled=float(out[sar_by].to_numpy(dtype=float)[labelled].mean()),
                    sar_mean_positive=float(attribute.mean()),
                    sar_propensity_min=float(propensity.min()), sar_propensity_max=float(propensity.max()))
    return out, info


def add_sar_attribute(df: pd.DataFrame, by: str, text_col: str, imdb_split: str = "train") -> pd.DataFrame:
    """`df` with a column `by` that a SAR labelling can rise with (SAR_ATTRIBUTES):
    "gc", the share of G and C bases in a splice sequence (the one simple per-sequence number);
    "length", a review's length in characters (tokenizer-free, so the same for every teacher);
    "stars", IMDB's 1-10 star rating (positives 7-10), read from the local files by the
    review's id (`data.with_rating_labels`: `df` must come from load_imdb(source="local"))."""
    from . import data

    if by == "gc":
        seq = df[text_col].astype(str)
        return df.assign(gc=seq.str.count("[GCgc]") / seq.str.len())
    if by == "length":
        return df.assign(length=df[text_col].astype(str).str.len())
    if by == "stars":
        return df.assign(stars=data.with_rating_labels(df, imdb_split)["stars"].to_numpy())
    raise ValueError(f"by must be one of {sorted({a for v in SAR_ATTRIBUTES.values() for a in v})}, got {by!r}")


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
