"""Losses: knowledge distillation for single-logit binary models and for K-class models (Hinton's
softmax form), and PU learning: (imbalanced) nnPU, uPU, nnPU with its parts (`nnpu_risk`), VPU and a
class-weighted naive baseline.

All functions take raw scores (logits), never sigmoid or softmax outputs, and return a batch mean.
A binary model has one logit per example (shape (B,)); a K-class model K of them (shape (B, K)).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


def _check_T_alpha(T: float, alpha: float) -> None:
    if not T > 0:
        raise ValueError(f"temperature T must be > 0, got {T}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def binary_kl_with_logits(teacher_logit: torch.Tensor, student_logit: torch.Tensor) -> torch.Tensor:
    """Per-example KL(Bern(p) || Bern(q)) with p = sigmoid(teacher_logit), q = sigmoid(student_logit):

        p (log p - log q) + (1 - p) (log(1 - p) - log(1 - q)),

    computed with logsigmoid for stability (log(1 - sigmoid(z)) = logsigmoid(-z)).
    """
    p = torch.sigmoid(teacher_logit)
    return (p * (F.logsigmoid(teacher_logit) - F.logsigmoid(student_logit))
            + (1 - p) * (F.logsigmoid(-teacher_logit) - F.logsigmoid(-student_logit)))


def soft_target_loss(student_logit: torch.Tensor, teacher_logit: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """T^2 * mean KL(sigmoid(t/T) || sigmoid(s/T)): the soft-target half of `kd_loss`.

    The T^2 factor keeps the gradient magnitude independent of T (Hinton et al. 2015).
    """
    _check_T_alpha(T, 0.0)
    return T * T * binary_kl_with_logits(teacher_logit.detach() / T, student_logit / T).mean()


def target_kl(student_logit: torch.Tensor, target_prob: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """T^2 * mean KL(Bern(p) || Bern(sigmoid(s/T))) for target probabilities p in [0, 1]: a
    teacher's soft targets (then equal to `soft_target_loss`), its hard labels (0/1) or smoothed
    labels. KL = BCE(s/T, p) - H(p), so hard targets give the plain BCE."""
    _check_T_alpha(T, 0.0)
    p = target_prob.detach().to(student_logit.dtype)
    entropy = -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p))
    return T * T * (F.binary_cross_entropy_with_logits(student_logit / T, p, reduction="none") - entropy).mean()


def kd_loss(student_logit: torch.Tensor, teacher_logit: torch.Tensor | None, labels: torch.Tensor | None,
            T: float = 2.0, alpha: float = 0.5, target_prob: torch.Tensor | None = None) -> torch.Tensor:
    """Knowledge-distillation loss for single-logit binary models:

        (1 - alpha) * BCE(s, y) + alpha * T^2 * KL(sigmoid(t/T) || sigmoid(s/T))

    alpha is how much the student listens to the teacher: 0 trains from the labels alone, 1 from
    the soft targets alone. With a single logit z, sigmoid(z) equals the 2-class softmax of the
    logits (0, z), so this is exactly Hinton-style softmax KD on the margin. The teacher logit is
    detached (no gradient reaches the teacher). `target_prob` replaces the teacher's softened
    outputs by other targets in the same slot (`target_kl`: its hard labels, smoothed labels).

    Unlabelled examples (label -1, e.g. a transfer set the teacher labelled) take part in the
    soft-target term only: the BCE is the mean over the labelled examples of the batch (0 when there
    are none), the KL the mean over all. They need alpha > 0.
    """
    _check_T_alpha(T, alpha)
    loss = student_logit.new_zeros(())
    if alpha < 1:
        if labels is None:
            raise ValueError("labels are needed when alpha < 1")
        labelled = labels >= 0
        if alpha == 0 and not bool(labelled.all()):
            raise ValueError("unlabelled examples (label -1) need alpha > 0: only the teacher can teach them")
        if labelled.any():
            loss = loss + (1 - alpha) * F.binary_cross_entropy_with_logits(
                student_logit[labelled], labels[labelled].to(student_logit.dtype))
    if alpha > 0:
        if target_prob is not None:
            loss = loss + alpha * target_kl(student_logit, target_prob, T)
        elif teacher_logit is None:
            raise ValueError("teacher logits (or target_prob) are needed when alpha > 0")
        else:
            loss = loss + alpha * soft_target_loss(student_logit, teacher_logit, T)
    return loss


def binary_entropy(p) -> np.ndarray:
    """Entropy in nats of Bernoulli(p), elementwise (scipy's `entr`)."""
    from scipy.special import entr

    p = np.asarray(p, dtype=np.float64)
    return entr(p) + entr(1 - p)


def smoothed_entropy(eps: float, n_classes: int) -> float:
    """Entropy in nats of a label smoothed by `eps` over `n_classes`: 1 - eps + eps/K on the true
    class, eps/K on each other (eps = 1: uniform). At K = 2: `binary_entropy(1 - eps / 2)`."""
    from scipy.special import entr

    return float(entr(1 - eps + eps / n_classes) + (n_classes - 1) * entr(eps / n_classes))


def matched_smoothing(teacher_logits, T: float) -> float:
    """The label-smoothing epsilon (`smoothed_entropy`) whose smoothed labels have the mean entropy
    of the teacher's outputs at temperature T: sigmoid(t/T) for single logits (shape (N,)),
    softmax(t/T) for K-class logits (shape (N, K)). The control that gives a student targets
    exactly as soft as the teacher's, without its knowledge."""
    from scipy.optimize import brentq
    from scipy.special import entr, expit, softmax

    _check_T_alpha(T, 0.0)
    t = np.asarray(teacher_logits, dtype=np.float64)
    if t.size == 0 or t.ndim not in (1, 2) or not np.isfinite(t).all():
        raise ValueError("teacher_logits must be a non-empty (N,) or (N, K) array of finite logits")
    if t.ndim == 1:
        k, h = 2, float(binary_entropy(expit(t / T)).mean())
    else:
        k, h = t.shape[1], float(entr(softmax(t / T, axis=1)).sum(axis=1).mean())
    if h <= 0:
        return 0.0
    if h >= np.log(k):
        return 1.0
    return float(brentq(lambda eps: smoothed_entropy(eps, k) - h, 0.0, 1.0, xtol=1e-12))


def softmax_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor | None,
                    T: float = 2.0, alpha: float = 0.5, target_prob: torch.Tensor | None = None) -> torch.Tensor:
    """Knowledge distillation for K-class models, logits of shape (B, K) (Hinton et al. 2015):

        (1 - alpha) * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))

    The K-class form of `kd_loss`, with the same arguments and rules: the teacher is detached;
    `target_prob` (B, K) replaces softmax(t/T) by other targets (its argmax one-hot, smoothed
    labels); unlabelled examples (label -1) take part in the KL term only. At K = 2, the logits
    (0, z) give exactly `kd_loss` on the single logit z (tests/test_losses.py).
    """
    _check_T_alpha(T, alpha)
    if student_logits.ndim != 2:
        raise ValueError(f"softmax_kd_loss needs (batch, classes) logits, got shape {tuple(student_logits.shape)}")
    loss = student_logits.new_zeros(())
    if alpha < 1:
        if labels is None:
            raise ValueError("labels are needed when alpha < 1")
        labelled = labels >= 0
        if alpha == 0 and not bool(labelled.all()):
            raise ValueError("unlabelled examples (label -1) need alpha > 0: only the teacher can teach them")
        if labelled.any():
            loss = loss + (1 - alpha) * F.cross_entropy(student_logits[labelled], labels[labelled].long())
    if alpha > 0:
        if target_prob is None and teacher_logits is None:
            raise ValueError("teacher logits (or target_prob) are needed when alpha > 0")
        p = (target_prob if target_prob is not None else torch.softmax(teacher_logits / T, dim=1)).detach()
        p = p.to(student_logits.dtype)
        kl = (torch.xlogy(p, p) - p * torch.log_softmax(student_logits / T, dim=1)).sum(dim=1)
        loss = loss + alpha * T * T * kl.mean()
    return loss


def collapse_to_binary(logits: torch.Tensor, positive, T: float = 1.0) -> torch.Tensor:
    """Single logits z from K-class logits t (shape (N, K)) such that sigmoid(z / T) is the
    probability the K-class model puts on the `positive` classes (a boolean mask of length K) at
    temperature T: z = T * (logsumexp(t_pos / T) - logsumexp(t_neg / T)). A rating teacher read as
    a binary one: its eight-way distribution collapsed to P(positive) at T."""
    _check_T_alpha(T, 0.0)
    positive = torch.as_tensor(positive, dtype=torch.bool)
    if logits.ndim != 2 or positive.shape != (logits.shape[1],) or positive.all() or not positive.any():
        raise ValueError("collapse_to_binary needs (N, K) logits and a mask of K classes with both sides non-empty")
    t = logits / T
    return T * (torch.logsumexp(t[:, positive], dim=1) - torch.logsumexp(t[:, ~positive], dim=1))


def sigmoid_loss(z: torch.Tensor, y: float) -> torch.Tensor:
    """The sigmoid surrogate l(z, y) = sigmoid(-y z), y in {+1, -1} (Kiryo et al. 2017)."""
    return torch.sigmoid(-y * z)


def _check_prior(prior: float, name: str = "prior") -> None:
    if not 0.0 < prior < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {prior}")


def _pu_parts(scores: torch.Tensor, labels: torch.Tensor, prior: float, surrogate: str = "sigmoid"):
    """(R_p^+, R_u^- - prior R_p^-) of the surrogate: the operations every nnPU loss of the study
    has run since study 2 (their order is what makes its runs repeat bit for bit)."""
    l = _surrogate(surrogate)
    labels = labels.float()
    if not torch.all((labels == 0) | (labels == 1)):
        raise ValueError("PU labels must be 1 (labelled positive) or 0 (unlabelled)")
    pos, unl = labels == 1, labels == 0
    if not bool(pos.any()):
        raise ValueError("a PU batch without labelled positives: the risk would treat every example as "
                         "negative; draw batches with data.PUBatchSampler")
    n_p, n_u = pos.sum(), unl.sum().clamp(min=1)
    r_p_plus = l(scores[pos], 1).sum() / n_p    # E_P[l(g, +1)]
    r_p_minus = l(scores[pos], -1).sum() / n_p  # E_P[l(g, -1)]
    r_u_minus = l(scores[unl], -1).sum() / n_u  # E_U[l(g, -1)]
    return r_p_plus, r_u_minus - prior * r_p_minus


def nnpu_loss(scores: torch.Tensor, labels: torch.Tensor, prior: float, beta: float = 0.0,
              gamma: float = 1.0, surrogate: str = "sigmoid") -> torch.Tensor:
    """Non-negative PU risk (Kiryo, Niu, du Plessis, Sugiyama, NeurIPS 2017), sigmoid surrogate.

    labels: 1 = labelled positive, 0 = unlabelled; prior = pi, the positive share of the
    unlabelled data. With R_p^+ = E_P[l(g,+1)], R_p^- = E_P[l(g,-1)], R_u^- = E_U[l(g,-1)]:

        risk = pi * R_p^+ + max(0, R_u^- - pi * R_p^-)

    Non-negative correction (their Algorithm 1): when the negative part
    r = R_u^- - pi * R_p^- falls below -beta (β of Kiryo et al.'s nnPU), the value returned for
    back-propagation is -gamma * r (a step that pushes r back up); otherwise it is pi * R_p^+ + r.
    A batch without labelled positives raises ValueError. `surrogate`: "sigmoid" (theirs) or
    "logistic". The loss of `nnpu_risk`, which also returns the parts.
    """
    return nnpu_risk(scores, labels, prior, surrogate, beta, gamma).loss


def imbalanced_nnpu_loss(scores: torch.Tensor, labels: torch.Tensor, prior: float, target_prior: float = 0.5,
                         beta: float = 0.0, gamma: float = 1.0, surrogate: str = "sigmoid") -> torch.Tensor:
    """Imbalanced nnPU (Su, Chen, Xu, IJCAI 2021): the nnPU risk re-weighted from the true class
    prior pi to a target prior pi' (usually 0.5), so a rare positive class is not ignored:

        risk = pi' * R_p^+ + (1 - pi') / (1 - pi) * max(0, R_u^- - pi * R_p^-)

    with the same non-negative correction (beta, gamma) as `nnpu_loss` on the (re-weighted)
    negative part. With pi' = pi it is exactly `nnpu_loss`. The loss of `nnpu_risk(...,
    target_prior=target_prior)`, which also returns the parts.
    """
    return nnpu_risk(scores, labels, prior, surrogate, beta, gamma, target_prior).loss


def naive_pu_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The naive PN baseline: unlabelled examples taken as negatives, plain BCE."""
    return F.binary_cross_entropy_with_logits(scores, labels.to(scores.dtype))


def logistic_loss(z: torch.Tensor, y: float) -> torch.Tensor:
    """The logistic surrogate l(z, y) = log(1 + exp(-y z)) = softplus(-y z), y in {+1, -1}
    (the second surrogate of Kiryo et al. 2017)."""
    return F.softplus(-y * z)


PU_SURROGATES = ("sigmoid", "logistic")


def _surrogate(name: str):
    if name not in PU_SURROGATES:
        raise ValueError(f"surrogate must be one of {PU_SURROGATES}, got {name!r}")
    return sigmoid_loss if name == "sigmoid" else logistic_loss


def _pu_split(scores: torch.Tensor, labels: torch.Tensor):
    """(scores of the labelled positives, scores of the unlabelled); the checks of `_pu_parts`."""
    labels = labels.float()
    if not torch.all((labels == 0) | (labels == 1)):
        raise ValueError("PU labels must be 1 (labelled positive) or 0 (unlabelled)")
    if not bool((labels == 1).any()):
        raise ValueError("a PU batch without labelled positives: the risk would treat every example as "
                         "negative; draw batches with data.PUBatchSampler")
    return scores[labels == 1], scores[labels == 0]


def _batch_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of `x`; 0 for an empty part (as `_pu_parts` counts a batch without unlabelled)."""
    return x.sum() / max(x.numel(), 1)


def pu_partial_risks(scores: torch.Tensor, labels: torch.Tensor, surrogate: str = "sigmoid"):
    """(R_p^+, R_p^-, R_u^-) = (E_P[l(g,+1)], E_P[l(g,-1)], E_U[l(g,-1)]): the batch means of the
    surrogate `l` ("sigmoid" or "logistic") over the labelled positives (P) and the unlabelled (U)."""
    l = _surrogate(surrogate)
    pos, unl = _pu_split(scores, labels)
    return _batch_mean(l(pos, 1)), _batch_mean(l(pos, -1)), _batch_mean(l(unl, -1))


def upu_loss(scores: torch.Tensor, labels: torch.Tensor, prior: float, surrogate: str = "sigmoid") -> torch.Tensor:
    """Unbiased PU risk (du Plessis, Niu, Sugiyama, ICML 2015 "Convex formulation for learning from
    positive and unlabeled data"; du Plessis et al., NeurIPS 2014), no clamp:

        risk = pi * R_p^+ + R_u^- - pi * R_p^-

    with the notation of `nnpu_loss` (labels 1 = labelled positive, 0 = unlabelled, prior = pi the
    positive share of the unlabelled data). It is unbiased for the PN risk pi E_P[l(g,+1)] +
    (1 - pi) E_N[l(g,-1)], but can go negative on a batch (what `nnpu_risk` corrects). With the
    sigmoid surrogate, l(z,+1) + l(z,-1) = 1 makes it 2 pi R_p^+ + R_u^- - pi; with the logistic
    one, l(z,+1) - l(z,-1) = -z makes it pi E_P[-g] + R_u^- (du Plessis et al. 2015's convex form).
    The loss of `upu_risk`, which also returns the parts.
    """
    return upu_risk(scores, labels, prior, surrogate).loss


class PURisk(NamedTuple):
    """What `nnpu_risk` returns: the value to back-propagate, the two parts of the risk and whether
    the non-negative correction fired (the parts are tensors on the graph: `.item()` to log them)."""
    loss: torch.Tensor
    positive_risk: torch.Tensor
    negative_risk: torch.Tensor
    fired: bool


def nnpu_risk(scores: torch.Tensor, labels: torch.Tensor, prior: float, surrogate: str = "sigmoid",
              beta: float = 0.0, gamma: float = 1.0, target_prior: float | None = None) -> PURisk:
    """Non-negative PU risk (Kiryo, Niu, du Plessis, Sugiyama, NeurIPS 2017) with the sigmoid or the
    logistic surrogate, and its parts for per-step logging:

        positive_risk = pi * R_p^+,   negative_risk = R_u^- - pi * R_p^-   (unclamped)
        fired         = negative_risk < -beta
        loss          = -gamma * negative_risk if fired else positive_risk + negative_risk

    (their Algorithm 1; the nnPU risk estimate itself is positive_risk + max(0, negative_risk)).
    With `target_prior` pi' (imbalanced nnPU, Su et al. 2021) the parts are re-weighted:
    positive_risk = pi' * R_p^+, negative_risk = (1 - pi') / (1 - pi) * (R_u^- - pi * R_p^-).
    `nnpu_loss` and `imbalanced_nnpu_loss` return its `loss`: one computation, the same operations
    in the same order as the study's runs have always used.
    """
    _check_prior(prior)
    if target_prior is not None:
        _check_prior(target_prior, "target_prior")
    r_p_plus, r_neg = _pu_parts(scores, labels, prior, surrogate)
    if target_prior is None:
        positive, negative = prior * r_p_plus, r_neg
    else:
        positive, negative = target_prior * r_p_plus, (1 - target_prior) / (1 - prior) * r_neg
    fired = bool(negative < -beta)  # the negative-risk estimate went below -beta: step back on it alone
    return PURisk(-gamma * negative if fired else positive + negative, positive, negative, fired)


def upu_risk(scores: torch.Tensor, labels: torch.Tensor, prior: float, surrogate: str = "sigmoid") -> PURisk:
    """uPU (`upu_loss`) with the parts `nnpu_risk` logs: positive_risk = pi * R_p^+, negative_risk =
    R_u^- - pi * R_p^- (left negative: uPU has no correction, so `fired` is always False) and
    loss = positive_risk + negative_risk."""
    _check_prior(prior)
    r_p_plus, r_p_minus, r_u_minus = pu_partial_risks(scores, labels, surrogate)
    positive, negative = prior * r_p_plus, r_u_minus - prior * r_p_minus
    return PURisk(positive + negative, positive, negative, False)


VPU_MARGINALS = ("all", "unlabelled")


def vpu_loss(scores: torch.Tensor, labels: torch.Tensor, marginal: str = "all") -> torch.Tensor:
    """The variational PU loss of VPU (Chen, Liu, Wang, Zhao, Wu, NeurIPS 2020, "A variational
    approach for learning from positive and unlabeled data"), without its MixUp term:

        L_var(Phi) = log E_x[Phi(x)] - E_P[log Phi(x)],    Phi = sigmoid(score)

    E_P over the labelled positives (labels 1); E_x over a sample of the marginal: marginal="all"
    takes the whole batch (labelled and unlabelled; the authors' code feeds all training data, and
    in the single-training-set scenario of `kdlib.pu` only the whole set is such a sample), and
    marginal="unlabelled" the unlabelled only (the case-control scenario). No class prior is needed.
    Computed in log space: log mean exp(logsigmoid(z)). Add `vpu_mixup_penalty` for full VPU.
    """
    if marginal not in VPU_MARGINALS:
        raise ValueError(f"marginal must be one of {VPU_MARGINALS}, got {marginal!r}")
    pos, unl = _pu_split(scores, labels)
    x = scores if marginal == "all" else unl
    if x.numel() == 0:
        raise ValueError("a batch without unlabelled examples: no sample of the marginal for VPU")
    log_phi = F.logsigmoid(x)
    return torch.logsumexp(log_phi, dim=0) - np.log(x.numel()) - F.logsigmoid(pos).mean()


def vpu_mixup_penalty(mixed_scores: torch.Tensor, marginal_scores: torch.Tensor, lam: float) -> torch.Tensor:
    """VPU's MixUp regulariser (Chen et al. 2020, as in the authors' code):

        mean_i (log(lam * Phi(x_i) + (1 - lam)) - log Phi(x~_i))^2,   x~_i = lam x_i + (1 - lam) x'_i

    with x_i the marginal sample scored `marginal_scores` (the same examples as `vpu_loss` takes its
    E_x over), x'_i labelled positives drawn at random (target Phi = 1), lam ~ Beta(alpha, alpha),
    and `mixed_scores` the model's scores of the mixed inputs x~_i (the caller mixes the inputs, or
    for token ids their embeddings). Full VPU: vpu_loss + weight * vpu_mixup_penalty. The target is
    not detached, as in the authors' code.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    if mixed_scores.shape != marginal_scores.shape:
        raise ValueError(f"mixed {tuple(mixed_scores.shape)} and marginal {tuple(marginal_scores.shape)} "
                         "scores must have the same shape")
    target = lam * torch.sigmoid(marginal_scores) + (1 - lam)
    return ((torch.log(target) - F.logsigmoid(mixed_scores)) ** 2).mean()


def weighted_naive_pu_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The naive PN baseline with the classes weighted by inverse frequency in the batch: unlabelled
    taken as negatives, each example weighted n / (2 n_c) (n_c the size of its class in the batch,
    scikit-learn's "balanced"), so the weighted BCE mean is

        1/2 * E_P[softplus(-z)] + 1/2 * E_U[softplus(z)].

    A batch lacking labelled positives or unlabelled examples raises ValueError.
    """
    pos, unl = _pu_split(scores, labels)
    if unl.numel() == 0:
        raise ValueError("a PU batch without unlabelled examples: the class weights are undefined")
    return 0.5 * F.softplus(-pos).mean() + 0.5 * F.softplus(unl).mean()


VPU_MIX_WEIGHT, VPU_MIX_ALPHA = 0.03, 0.3  # the authors' code's defaults (its --lam and --mix-alpha)


def vpu_output_mixup(scores: torch.Tensor, labels: torch.Tensor, mix_alpha: float = VPU_MIX_ALPHA,
                     generator: torch.Generator | None = None):
    """VPU's MixUp (Chen et al. 2020) done on the scores, for models whose inputs cannot be mixed
    (token ids): (mixed_scores, lam) with lam ~ Beta(mix_alpha, mix_alpha) (by its inverse CDF, scipy)
    and, for every example i of the batch (the marginal sample of `vpu_loss`, marginal="all"), a
    labelled positive j(i) drawn at random with replacement (a batch holds few of them):

        mixed_i = lam * z_i + (1 - lam) * z_j(i).

    Every model of the study ends in an affine head (score = w . h + b), so these are exactly the
    scores of the mixed head inputs lam h_i + (1 - lam) h_j: MixUp at the head's input (manifold
    mixup at the last layer) rather than at the model's input; the penalty then regularises how the
    head maps a mix, not how the encoder responds to mixed inputs. Draws from `generator` (None:
    torch's global generator, which the training loop seeds per epoch: runs repeat and resume)."""
    from scipy.stats import beta as beta_dist

    if not (np.isfinite(mix_alpha) and mix_alpha > 0):
        raise ValueError(f"mix_alpha must be > 0, got {mix_alpha}")
    pos, _ = _pu_split(scores, labels)
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    lam = float(beta_dist.ppf(u, mix_alpha, mix_alpha))
    j = torch.randint(pos.numel(), (scores.numel(),), generator=generator).to(scores.device)
    return lam * scores + (1 - lam) * pos[j], lam


def vpu_risk(scores: torch.Tensor, labels: torch.Tensor, mix_weight: float = VPU_MIX_WEIGHT,
             mix_alpha: float = VPU_MIX_ALPHA, generator: torch.Generator | None = None) -> PURisk:
    """Full VPU on one batch of (scores, labels): `vpu_loss` (marginal "all", the authors' choice)
    + mix_weight * `vpu_mixup_penalty` of `vpu_output_mixup`'s mixed scores (the MixUp done on the
    scores, see there). No prior, no parts (None), never fires."""
    if not (np.isfinite(mix_weight) and mix_weight >= 0):
        raise ValueError(f"mix_weight must be >= 0, got {mix_weight}")
    variational = vpu_loss(scores, labels, "all")
    mixed, lam = vpu_output_mixup(scores, labels, mix_alpha, generator)
    return PURisk(variational + mix_weight * vpu_mixup_penalty(mixed, scores, lam), None, None, False)


PU_KINDS = ("nnpu", "imbalanced_nnpu", "naive", "supervised", "upu", "naive_weighted", "vpu")
PRIOR_KINDS = ("nnpu", "imbalanced_nnpu", "upu")  # the kinds whose loss takes the class prior pi_u
CORRECTED_KINDS = ("nnpu", "imbalanced_nnpu")  # the kinds with the non-negative correction (beta, gamma)
SURROGATE_KINDS = PRIOR_KINDS  # the kinds with a surrogate loss (sigmoid | logistic)


class PULoss:
    """The loss of one PU kind: ``loss(scores, labels)`` is the value to back-propagate, and
    ``loss.risk(scores, labels)`` the same value as a `PURisk` with the nnPU parts and whether the
    correction fired ("upu": the parts, never fires; "naive" and "supervised", plain BCE,
    "naive_weighted" and "vpu": no parts (None), never fires). Built by `pu_loss`, which checks the
    arguments."""

    def __init__(self, kind: str, prior: float | None, target_prior: float | None, beta: float, gamma: float,
                 surrogate: str, mix_weight: float = VPU_MIX_WEIGHT, mix_alpha: float = VPU_MIX_ALPHA):
        self.kind, self.prior, self.target_prior = kind, prior, target_prior
        self.beta, self.gamma, self.surrogate = beta, gamma, surrogate
        self.mix_weight, self.mix_alpha = mix_weight, mix_alpha

    def risk(self, scores: torch.Tensor, labels: torch.Tensor) -> PURisk:
        if self.kind in ("supervised", "naive"):
            return PURisk(naive_pu_loss(scores, labels), None, None, False)
        if self.kind == "naive_weighted":
            return PURisk(weighted_naive_pu_loss(scores, labels), None, None, False)
        if self.kind == "upu":
            return upu_risk(scores, labels, self.prior, self.surrogate)
        if self.kind == "vpu":
            return vpu_risk(scores, labels, self.mix_weight, self.mix_alpha)
        return nnpu_risk(scores, labels, self.prior, self.surrogate, self.beta, self.gamma, self.target_prior)

    def __call__(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.risk(scores, labels).loss


def pu_loss(kind: str, prior: float | None = None, target_prior: float = 0.5, beta: float = 0.0,
            gamma: float = 1.0, surrogate: str = "sigmoid", mix_weight: float = VPU_MIX_WEIGHT,
            mix_alpha: float = VPU_MIX_ALPHA) -> PULoss:
    """A `PULoss` for `kind` in PU_KINDS: "nnpu" (`nnpu_risk`), "imbalanced_nnpu" (with `target_prior`),
    "upu" (`upu_risk`), "naive" and "supervised" (plain BCE: they differ in which labels the caller
    passes), "naive_weighted" (`weighted_naive_pu_loss`), "vpu" (`vpu_risk`, MixUp on the scores with
    `mix_weight`, `mix_alpha`). `prior` (pi_u) is needed by PRIOR_KINDS; `surrogate` shapes
    SURROGATE_KINDS, `beta` and `gamma` (the non-negative correction) CORRECTED_KINDS. Checks its
    arguments before any compute."""
    if kind not in PU_KINDS:
        raise ValueError(f"unknown PU loss kind {kind!r}; choose one of {PU_KINDS}")
    _surrogate(surrogate)
    if not (np.isfinite(beta) and beta >= 0 and np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"the correction needs beta >= 0 and gamma > 0, got beta={beta}, gamma={gamma}")
    if not (np.isfinite(mix_weight) and mix_weight >= 0 and np.isfinite(mix_alpha) and mix_alpha > 0):
        raise ValueError(f"VPU's MixUp needs mix_weight >= 0 and mix_alpha > 0, got {mix_weight}, {mix_alpha}")
    if kind not in PRIOR_KINDS:
        return PULoss(kind, None, None, beta, gamma, surrogate, mix_weight, mix_alpha)
    _check_prior(prior if prior is not None else -1.0)
    if kind != "imbalanced_nnpu":
        return PULoss(kind, prior, None, beta, gamma, surrogate)
    _check_prior(target_prior, "target_prior")
    return PULoss(kind, prior, target_prior, beta, gamma, surrogate)


HINT_LOSSES = ("mse", "cosine")


def hint_loss(student_states: torch.Tensor, teacher_states: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Intermediate-layer ("hint") distillation of (B, L, D) states: the mean over layers and examples
    of the squared error per feature ("mse", averaged over D) or of 1 - cosine similarity ("cosine").
    The student's states are its projections onto the teacher's L layers (`layers.HintStudent`)."""
    if kind not in HINT_LOSSES:
        raise ValueError(f"kind must be one of {HINT_LOSSES}, got {kind!r}")
    if student_states.shape != teacher_states.shape or student_states.ndim != 3:
        raise ValueError(f"student {tuple(student_states.shape)} and teacher {tuple(teacher_states.shape)} "
                         "states must both be (batch, layers, dim)")
    t = teacher_states.to(student_states.dtype)
    if kind == "mse":
        return F.mse_loss(student_states, t)
    return (1 - F.cosine_similarity(student_states, t, dim=-1)).mean()
