"""Model selection and class-prior estimation from PU data alone (no true negatives anywhere).

A PU validation set has labels 1 = labelled positive, 0 = unlabelled, as in `kdlib.losses`; scores
are logits (higher = more positive). The "prior" these functions take is, as for the PU losses, the
positive share of the *unlabelled* part (pi_u of `kdlib.pu`), the mixture weight under SCAR:

    unlabelled ~ pi_u * P + (1 - pi_u) * N,   labelled ~ P.

Criteria (`pu_risk`, `variational_criterion`: lower is better; `lu_auc`: higher is better):
  - `pu_risk`: the unbiased PU estimate of a PN risk (du Plessis et al. 2014, 2015).
  - `lu_auc`: ROC-AUC of labelled vs unlabelled; an affine, increasing function of the true
    ROC-AUC (Jain, White, Radivojac, AAAI 2017), so it ranks models as the true AUC does and needs
    no prior; `pn_auc_from_lu` undoes the map given the prior.
  - `variational_criterion`: VPU's validation loss (Chen et al., NeurIPS 2020).

Class prior (Elkan & Noto, KDD 2008): `elkan_noto_c` (estimators e1, e2, e3 of the label
frequency c = P(labelled | positive)), `prior_from_c`, and `elkan_noto_prior` combining them.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, logsumexp

PU_RISK_LOSSES = ("sigmoid", "zero_one")
EN_ESTIMATORS = ("e1", "e2", "e3")
PRIOR_PARTS = ("unlabelled", "all")
PRIOR_SOURCES = ("oracle", "elkan_noto")  # where a run's class prior comes from (online_pu.py's prior_source)


def _check_prior(prior: float) -> None:
    if not (isinstance(prior, (int, float, np.floating)) and 0.0 < prior < 1.0):
        raise ValueError(f"prior must be in (0, 1), got {prior!r}")


def _pu_arrays(scores, labels, need_unlabelled: bool = True):
    """(scores, labels) as float / int arrays of one length, labels in {0, 1}, with at least one
    labelled (and, if `need_unlabelled`, one unlabelled) example; else ValueError."""
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores ({scores.size}) and labels ({labels.size}) differ in length")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("PU labels must be 1 (labelled positive) or 0 (unlabelled)")
    if not np.any(labels == 1):
        raise ValueError("no labelled positives (label 1) in the PU data")
    if need_unlabelled and not np.any(labels == 0):
        raise ValueError("no unlabelled examples (label 0) in the PU data")
    return scores, labels.astype(int)


def pu_risk(scores, labels, prior: float, loss: str = "sigmoid", threshold: float = 0.0) -> float:
    """The unbiased PU estimate (du Plessis, Niu, Sugiyama 2014, 2015) of the PN risk
    pi E_P[l(z,+1)] + (1 - pi) E_N[l(z,-1)] of the decision function z = score - threshold:

        R = pi * E_L[l(z,+1)] + E_U[l(z,-1)] - pi * E_L[l(z,-1)]

    loss="sigmoid": l(z,y) = sigmoid(-y z) (equals `losses.upu_loss` at threshold 0);
    loss="zero_one": l(z,+1) = [z <= 0], l(z,-1) = [z > 0], so R estimates the error rate
    pi * FNR + (1 - pi) * FPR on the unlabelled distribution. Unbiased, hence can be slightly
    negative on a finite set. Lower is better. prior = pi_u, the unlabelled part's positive share.
    """
    _check_prior(prior)
    if loss not in PU_RISK_LOSSES:
        raise ValueError(f"loss must be one of {PU_RISK_LOSSES}, got {loss!r}")
    scores, labels = _pu_arrays(scores, labels)
    z = scores - threshold
    if loss == "sigmoid":
        l_plus, l_minus = expit(-z), expit(z)
    else:
        l_plus, l_minus = (z <= 0).astype(float), (z > 0).astype(float)
    pos, unl = labels == 1, labels == 0
    return float(prior * l_plus[pos].mean() + l_minus[unl].mean() - prior * l_minus[pos].mean())


def lu_auc(scores, labels) -> float:
    """ROC-AUC of labelled (1) vs unlabelled (0) examples (sklearn's roc_auc_score; ties count 1/2).

    Under SCAR, with the unlabelled a mixture pi_u P + (1 - pi_u) N,
    AUC_LU = P(s_L > s_U) = pi_u * 1/2 + (1 - pi_u) * AUC_PN (Jain, White, Radivojac, AAAI 2017):
    increasing in the true AUC_PN for any pi_u < 1, so it ranks models as AUC_PN does without
    knowing pi_u. Higher is better; 1/2 + (1 - pi_u)/2 at most.
    """
    from sklearn.metrics import roc_auc_score

    scores, labels = _pu_arrays(scores, labels)
    return float(roc_auc_score(labels, scores))


def pn_auc_from_lu(auc_lu: float, prior: float) -> float:
    """The true ROC-AUC implied by `lu_auc` under SCAR: AUC_PN = (AUC_LU - pi_u / 2) / (1 - pi_u)."""
    _check_prior(prior)
    return (auc_lu - prior / 2) / (1 - prior)


def variational_criterion(scores, labels, marginal: str = "all") -> float:
    """VPU's model-selection criterion (Chen et al., NeurIPS 2020): the variational loss on a PU
    validation set, log E_x[Phi(x)] - E_L[log Phi(x)] with Phi = sigmoid(score) and E_x over all
    examples (marginal="all", the authors' choice) or the unlabelled only ("unlabelled"); the numpy
    twin of `losses.vpu_loss`. Lower is better; needs no prior."""
    from .losses import VPU_MARGINALS

    if marginal not in VPU_MARGINALS:
        raise ValueError(f"marginal must be one of {VPU_MARGINALS}, got {marginal!r}")
    scores, labels = _pu_arrays(scores, labels)
    x = scores if marginal == "all" else scores[labels == 0]
    return float(logsumexp(log_expit(x)) - np.log(x.size) - log_expit(scores[labels == 1]).mean())


def elkan_noto_c(probs, labels, estimator: str = "e1") -> float:
    """Elkan & Noto's (KDD 2008) estimate of the label frequency c = P(labelled | positive), from
    g(x) = P(labelled | x) as predicted by a probabilistic classifier of labelled vs unlabelled on a
    held-out set V (not the one g was fitted on), with L its labelled examples:

        e1 = mean_{x in L} g(x)   (their recommended one)
        e2 = sum_{x in L} g(x) / sum_{x in V} g(x)
        e3 = max_{x in V} g(x)

    They rest on SCAR and on g(x) = c wherever P(positive | x) = 1 (separable classes).
    """
    if estimator not in EN_ESTIMATORS:
        raise ValueError(f"estimator must be one of {EN_ESTIMATORS}, got {estimator!r}")
    probs, labels = _pu_arrays(probs, labels, need_unlabelled=False)
    if np.any(probs < 0) or np.any(probs > 1):
        raise ValueError("probs must be probabilities in [0, 1] (g = P(labelled | x)), not logits")
    labelled = probs[labels == 1]
    if estimator == "e1":
        return float(labelled.mean())
    if estimator == "e2":
        return float(labelled.sum() / probs.sum())
    return float(probs.max())


def prior_from_c(c: float, labelled_share: float, part: str = "unlabelled") -> float:
    """The class prior implied by the label frequency c for a set whose labelled share is
    s = n_labelled / n (Elkan & Noto 2008: P(y = 1) = P(labelled) / c):

        part="all":        pi   = s / c                          (positive share of the whole set)
        part="unlabelled": pi_u = (pi - s) / (1 - s) = s (1 - c) / (c (1 - s))
                                                     (positive share of the unlabelled part: the
                                                      prior the PU losses and `pu_risk` take)

    pi is clipped to [s, 1] (so pi_u to [0, 1]): a c below s would mean more positives than rows.
    """
    if not 0.0 < c <= 1.0:
        raise ValueError(f"c (the label frequency) must be in (0, 1], got {c!r}")
    if not 0.0 < labelled_share < 1.0:
        raise ValueError(f"labelled_share must be in (0, 1), got {labelled_share!r}")
    if part not in PRIOR_PARTS:
        raise ValueError(f"part must be one of {PRIOR_PARTS}, got {part!r}")
    pi = min(max(labelled_share / c, labelled_share), 1.0)
    return pi if part == "all" else (pi - labelled_share) / (1 - labelled_share)


def elkan_noto_prior(probs, labels, estimator: str = "e1", part: str = "unlabelled") -> float:
    """`prior_from_c(elkan_noto_c(probs, labels, estimator), s, part)` with s the labelled share of
    this held-out set: by default pi_u, the positive share of its unlabelled part (see
    `prior_from_c`; part="all" for the positive share of the whole set)."""
    c = elkan_noto_c(probs, labels, estimator)
    _, labels = _pu_arrays(probs, labels)
    return prior_from_c(c, float(labels.mean()), part)


def _as_tokens(ids) -> list:
    """A sequence's token ids as the features of a bag of tokens."""
    return [int(t) for t in ids]


def _as_positioned_tokens(ids) -> list:
    """A sequence's (position, token id) pairs: one-hot features of where each token sits."""
    return [(i, int(t)) for i, t in enumerate(ids)]


def estimate_prior(train_tokens, train_pu_labels, val_tokens, val_pu_labels, seed: int = 0,
                   positional: bool = False, estimator: str = "e1") -> dict:
    """Elkan & Noto's class prior from PU data alone (no true label): a labelled-vs-unlabelled
    classifier g is fitted on the PU training set, its probabilities on the PU validation set give
    c (`elkan_noto_c`) and the prior (`elkan_noto_prior`).

    g is scikit-learn's LogisticRegression on tf-idf-weighted counts of the token ids of each
    sequence (a bag of tokens, or with `positional` of (position, token) pairs, for fixed-length
    sequences such as splice's k-mers, where a token's place matters); its L2 strength is chosen by
    3-fold cross-validated log-loss (folds shuffled by `seed`), since Elkan–Noto need calibrated
    probabilities rather than a ranking. Returns {"prior": pi_u (the positive share of the
    unlabelled data, what the PU losses take), "pi": the positive share of the whole set, "c",
    "estimator", "C": the chosen inverse regularisation, "val_lu_auc": g's `lu_auc` on validation}.
    """
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline

    _, y_train = _pu_arrays(np.zeros(len(train_tokens)), train_pu_labels)
    _, y_val = _pu_arrays(np.zeros(len(val_tokens)), val_pu_labels)
    model = make_pipeline(
        CountVectorizer(analyzer=_as_positioned_tokens if positional else _as_tokens), TfidfTransformer(),
        GridSearchCV(LogisticRegression(max_iter=2000), {"C": np.logspace(-1, 3, 5)}, scoring="neg_log_loss",
                     cv=StratifiedKFold(3, shuffle=True, random_state=seed)))
    model.fit(list(train_tokens), y_train)
    g = model.predict_proba(list(val_tokens))[:, 1]
    c = elkan_noto_c(g, y_val, estimator)
    return {"prior": elkan_noto_prior(g, y_val, estimator), "pi": elkan_noto_prior(g, y_val, estimator, "all"),
            "c": c, "estimator": estimator, "C": float(model[-1].best_params_["C"]), "val_lu_auc": lu_auc(g, y_val)}


def scale_prior(prior: float, scale: float) -> float:
    """The prior a run's PU losses use: a source's pi_u (the construction's, or `estimate_prior`'s)
    times `scale` (1: as is; 0.5 or 1.5: a misspecified prior). ValueError, naming both, when the
    product leaves (0, 1)."""
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"prior_scale must be > 0, got {scale!r}")
    used = prior * scale
    if not 0.0 < used < 1.0:
        raise ValueError(f"prior_scale={scale!r} times the prior {prior:.4f} gives {used:.4f}: the prior the "
                         "losses use must be in (0, 1)")
    return used
