"""Several teachers as one: fusing single-logit binary teachers for distillation.

Each fusion maps the teachers' logits, an array (M teachers, N examples), to one "fused teacher"
logit per example, in the form `losses.kd_loss` reads: its soft targets at temperature T are
sigmoid(z / T). So every fusion distils with the study's one loss, and T applies to each:

* `mean_logits`: the mean of the teachers' logits (at T: sigmoid(mean(t) / T));
* `mean_probs`: the mean of the teachers' probabilities at T, written as the logit z with
  sigmoid(z / T) equal to it;
* `majority_vote`: the teachers' hard labels, the majority's side (a tie goes to the side of the
  mean probability), as targets 0/1 (`kd_loss`'s `target_prob`);
* `Stacking`: a logistic regression on the teachers' logits, fitted on validation labels
  (scikit-learn), its decision function as the fused logit; its own validation logits come from
  fits on the other folds (`stacking_out_of_fold`), so that choosing between fusions on validation
  does not favour the one fitted there.

Teachers of different kinds speak on different logit scales (a linear model's are unbounded, a
fine-tuned transformer's stop near ±5): `temperatures` fits each one's temperature scaling on
validation, and dividing by it puts them on one calibrated scale before they are fused.

The mean of the per-teacher KD losses, (1/M) sum_m T^2 KL(sigmoid(t_m/T) || sigmoid(s/T)), differs
from KD to `mean_probs` at the same T by a constant (the teachers' mean entropy): the same
gradients, so the same student (`test_fusion.py`). `per_teacher_kd_loss` computes it as written.
"Mimic all" (`MimicAll`) gives the student one head per teacher, each matched to its teacher,
and predicts with the heads' mean.

`fuse` applies one fusion to every split; `disagreement` and `error_correlation` measure how
diverse the teachers are; `by_validation` ranks them; `read_teacher_runs`, `split_logits` and `shared_pool` (the unlabelled pool every teacher labelled) read
the teacher runs (`teacher.py`, `teacher_kinds.py`, `teacher_snapshots.py`) a fusion is made of.
"""
from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from . import losses, paths
from .data import TeacherLogits, content_hash

FUSIONS = ("mean_logits", "mean_probs", "vote", "stacking")  # fused teachers; "mimic all" is a student


def _check_logits(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1 or not np.isfinite(z).all():
        raise ValueError(f"teacher logits must be a finite (teachers, examples) array, got shape {z.shape}")
    return z


def mean_logits(logits) -> np.ndarray:
    """The teachers' mean logit per example."""
    return _check_logits(logits).mean(axis=0)


def mean_probs(logits, T: float = 1.0) -> np.ndarray:
    """The logit z with sigmoid(z / T) = the teachers' mean of sigmoid(t / T)."""
    from scipy.special import expit, logit

    losses._check_T_alpha(T, 0.0)
    p = expit(_check_logits(logits) / T).mean(axis=0)
    return T * logit(np.clip(p, 1e-12, 1 - 1e-12))


def majority_vote(logits) -> np.ndarray:
    """0/1 per example: the side most teachers take (t > 0); a tie goes to the side of `mean_probs`."""
    z = _check_logits(logits)
    votes = (z > 0).mean(axis=0)
    return np.where(votes == 0.5, mean_probs(z) > 0, votes > 0.5).astype(np.float64)


class Stacking:
    """A learned aggregator: logistic regression (scikit-learn) on the teachers' logits, fitted on
    validation labels only; `logits(t)` is its decision function, a fused logit."""

    def __init__(self, val_logits, val_labels, C: float = 1.0):
        from sklearn.linear_model import LogisticRegression

        z, y = _check_logits(val_logits), np.asarray(val_labels).astype(int)
        if y.shape != (z.shape[1],) or set(np.unique(y)) != {0, 1}:
            raise ValueError("Stacking needs 0/1 validation labels of both classes, one per example")
        self.model = LogisticRegression(C=C).fit(z.T, y)

    @property
    def weights(self) -> np.ndarray:
        return self.model.coef_[0]

    def logits(self, logits) -> np.ndarray:
        return self.model.decision_function(_check_logits(logits).T)


def stacking_out_of_fold(val_logits, val_labels, folds: int = 5, C: float = 1.0, seed: int = 0) -> np.ndarray:
    """Stacking's validation logits, each from a fit on the other `folds` folds (stratified, seeded;
    scikit-learn's `cross_val_predict`): validation scores of a fit that never saw their labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    z, y = _check_logits(val_logits), np.asarray(val_labels).astype(int)
    if y.shape != (z.shape[1],) or set(np.unique(y)) != {0, 1} or np.bincount(y).min() < folds:
        raise ValueError(f"stacking needs 0/1 validation labels, one per example, at least {folds} of each class")
    return cross_val_predict(LogisticRegression(C=C), z.T, y, method="decision_function",
                             cv=StratifiedKFold(folds, shuffle=True, random_state=seed))


def temperatures(val_logits, val_labels, reference: int | None = None) -> np.ndarray:
    """(M,): each teacher's temperature scaling fitted on validation (`metrics.fit_temperature`);
    the teachers' logits divided by theirs are on one calibrated scale (accuracy and ROC-AUC unchanged).
    With `reference` (a teacher's index), each is divided by the reference teacher's temperature: the
    teachers share the reference's scale, and the reference's own logits stay as they are (so the
    distillation T chosen for that teacher keeps its meaning)."""
    from . import metrics

    temps = np.array([metrics.fit_temperature(z, val_labels) for z in _check_logits(val_logits)])
    return temps if reference is None else temps / temps[reference]


def fuse(method: str, logits: dict, val_labels=None, T: float = 1.0) -> dict:
    """One fused teacher logit per example of every split, from the teachers' logits of each split
    ({split: (M, N) array}). "stacking" is fitted on the "val" split with `val_labels` (validation
    only), and its "val" logits are out of fold (`stacking_out_of_fold`); "vote" gives +1 / -1, the
    side of the majority (its targets are hard: read them at T = 1); "mean_probs" averages at
    temperature T."""
    if method not in FUSIONS:
        raise ValueError(f"method must be one of {FUSIONS}, got {method!r}")
    if method == "stacking":
        if val_labels is None or "val" not in logits:
            raise ValueError("stacking needs the teachers' validation logits (split 'val') and val_labels")
        stack = Stacking(logits["val"], val_labels)
        return {s: stacking_out_of_fold(z, val_labels) if s == "val" else stack.logits(z) for s, z in logits.items()}
    one = {"mean_logits": mean_logits, "mean_probs": lambda z: mean_probs(z, T),
           "vote": lambda z: 2.0 * majority_vote(z) - 1.0}[method]
    return {s: one(z) for s, z in logits.items()}


def disagreement(logits) -> np.ndarray:
    """(M, M): the share of examples on which teachers i and j predict different sides."""
    side = _check_logits(logits) > 0
    return (side[:, None, :] != side[None, :, :]).mean(axis=2)


def error_correlation(logits, labels) -> np.ndarray:
    """(M, M): the Pearson correlation of the teachers' errors (1 where a teacher is wrong), NaN
    for a teacher that makes no error or nothing but errors."""
    wrong = ((_check_logits(logits) > 0) != np.asarray(labels).astype(bool)[None, :]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(wrong) if len(wrong) > 1 else np.ones((1, 1))


def by_validation(val_logits, val_labels) -> np.ndarray:
    """The teachers' indices from the best validation accuracy to the worst (ties: declared order)."""
    acc = ((_check_logits(val_logits) > 0) == np.asarray(val_labels).astype(bool)[None, :]).mean(axis=1)
    return np.argsort(-acc, kind="stable")


def read_teacher_runs(names) -> list[dict]:
    """The metrics.json of each teacher run results/runs/<name>/, checked to be binary teachers that
    share one tokenizer and one set of splits (their recorded data hashes)."""
    runs = []
    for name in names:
        f = paths.RESULTS / "runs" / name / "metrics.json"
        if not f.exists():
            raise FileNotFoundError(f"{f} not found: run teacher {name!r} first (make multi-teachers)")
        run = json.loads(f.read_text())
        if run.get("task", "binary") != "binary":
            raise ValueError(f"teacher {name!r} is a {run['task']} teacher: fusions take binary teachers")
        runs.append({**run, "name": name})
    for split in ("train", "val", "test"):
        hashes = {r["name"]: r["logits"][split]["data_hash"] for r in runs}
        if len(set(hashes.values())) > 1:
            raise ValueError(f"the teachers' {split} splits differ: {hashes}")
    tokenizers = {r["name"]: r["provenance"]["teacher"].get("tokenizer_hash") for r in runs}
    if len(set(tokenizers.values())) > 1:
        raise ValueError(f"the teachers record different tokenizers: {tokenizers}")
    return runs


def shared_pool(runs: list[dict]) -> tuple[int, str]:
    """(size, data hash) of the unlabelled pool (split "transfer") that every teacher run of `runs` labelled: a
    fused teacher labels the pool only where each of its teachers cached logits for the same reviews."""
    missing = [r["name"] for r in runs if not r["logits"].get("transfer", {}).get("n")]
    if missing:
        raise ValueError(f"teachers {missing} cached no logits for the unlabelled pool: rerun them with transfer_n")
    pools = {r["name"]: (int(r["logits"]["transfer"]["n"]), r["logits"]["transfer"]["data_hash"]) for r in runs}
    if len(set(pools.values())) > 1:
        raise ValueError(f"the teachers labelled different pools (size, data hash): {pools}; rerun them with one transfer_n")
    return next(iter(pools.values()))


def split_logits(runs: list[dict], split: str, ids) -> np.ndarray:
    """(M, N): each teacher run's cached logits of `split`, looked up for the example `ids`."""
    ids = np.array(ids)  # a writable copy (pandas hands out read-only arrays)
    return np.stack([TeacherLogits.load(paths.cache_dir() / r["logits"][split]["cache_path"])[ids].numpy()
                     .astype(np.float64) for r in runs])


def logit_hashes(runs: list[dict], ids: dict) -> dict[str, str]:
    """{teacher run: a hash of its cached logits on every split of `ids` ({split: example ids}), in that
    order}: what a fusion is made of, to tell a student or a report that a teacher's logits changed
    under an unchanged checkpoint hash (a linear teacher's out-of-fold train logits, say)."""
    return {r["name"]: content_hash(*[split_logits([r], s, i)[0] for s, i in ids.items()]) for r in runs}


def per_teacher_kd_loss(student_logit: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                        T: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """(1 - alpha) BCE(s, y) + alpha (1/M) sum_m T^2 KL(sigmoid(t_m / T) || sigmoid(s / T)), with
    teacher_logits of shape (B, M): the mean of the per-teacher KD losses (`losses.kd_loss`)."""
    if teacher_logits.ndim != 2:
        raise ValueError(f"teacher_logits must be (batch, teachers), got shape {tuple(teacher_logits.shape)}")
    parts = [losses.kd_loss(student_logit, teacher_logits[:, m], labels, T=T, alpha=alpha)
             for m in range(teacher_logits.shape[1])]
    return torch.stack(parts).mean()


class MimicAll(nn.Module):
    """A student with one output head per teacher (its one-logit head replaced by an M-logit one,
    drawn from `seed`): in training it returns (B, M) logits, head m matched to teacher m; in
    evaluation the heads' mean, (B,), a single-logit model like any other."""

    def __init__(self, student: nn.Module, n_teachers: int, seed: int):
        super().__init__()
        if int(n_teachers) != n_teachers or n_teachers < 1:
            raise ValueError(f"n_teachers must be an integer >= 1, got {n_teachers}")
        old = getattr(student, "head", None)
        if not isinstance(old, nn.Linear) or old.out_features != 1:
            raise ValueError(f"{type(student).__name__} has no one-logit `head` to replace")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            student.head = nn.Linear(old.in_features, int(n_teachers)).to(old.weight.device)
        self.student = student

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        heads = self.student(input_ids, attention_mask)
        heads = heads if heads.ndim == 2 else heads[:, None]  # one teacher: squeeze(-1) left (B,)
        return heads if self.training else heads.mean(dim=1)


def mimic_all_loss(heads: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                   T: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """`MimicAll`'s training loss: (1 - alpha) BCE of the heads' mean logit on the labels, plus alpha
    times the mean over heads of T^2 KL(sigmoid(t_m / T) || sigmoid(s_m / T)); heads and
    teacher_logits of shape (B, M)."""
    losses._check_T_alpha(T, alpha)
    if heads.shape != teacher_logits.shape or heads.ndim != 2:
        raise ValueError(f"heads {tuple(heads.shape)} and teacher_logits {tuple(teacher_logits.shape)} must both be (batch, M)")
    loss = heads.new_zeros(())
    if alpha < 1:
        loss = loss + losses.kd_loss(heads.mean(dim=1), None, labels, T=1.0, alpha=0.0) * (1 - alpha)
    if alpha > 0:
        soft = torch.stack([losses.soft_target_loss(heads[:, m], teacher_logits[:, m], T) for m in range(heads.shape[1])])
        loss = loss + alpha * soft.mean()
    return loss
