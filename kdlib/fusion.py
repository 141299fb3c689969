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
  (scikit-learn), its decision function as the fused logit.

The mean of the per-teacher KD losses, (1/M) sum_m T^2 KL(sigmoid(t_m/T) || sigmoid(s/T)), differs
from KD to `mean_probs` at the same T by a constant (the teachers' mean entropy): the same
gradients, so the same student (`test_fusion.py`). `per_teacher_kd_loss` computes it as written.
"Mimic all" (`MimicAll`) gives the student one head per teacher, each matched to its teacher,
and predicts with the heads' mean.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import losses


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
