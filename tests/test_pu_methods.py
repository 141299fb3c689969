"""PU building blocks of issue 55: uPU, nnPU with its parts (sigmoid and logistic), VPU, the weighted
naive baseline (kdlib.losses), and PU-only model selection and class-prior estimation
(kdlib.pu_select). Expected values are computed by hand with numpy on small arrays."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlib import losses, pu, pu_select as ps

# 2 labelled positives, 3 unlabelled
S, Y, PRIOR = [2.0, -1.0, 0.5, -0.5, 1.5], [1, 1, 0, 0, 0], 0.4
# over-fitted: positives scored high, unlabelled very low -> the negative risk goes below 0
S_OVER, Y_OVER = [3.0, 4.0, -5.0, -6.0], [1, 1, 0, 0]


def sig(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))


def softplus(z):
    return np.log1p(np.exp(np.asarray(z, dtype=np.float64)))


def tt(v, grad=False):
    return torch.tensor(v, dtype=torch.float64, requires_grad=grad)


def np_parts(scores, labels, surrogate):
    """(R_p^+, R_p^-, R_u^-) by hand."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    p, u = s[y == 1], s[y == 0]
    l_ = (lambda z, t: sig(-t * z)) if surrogate == "sigmoid" else (lambda z, t: softplus(-t * z))
    return l_(p, 1).mean(), l_(p, -1).mean(), l_(u, -1).mean()


# ------------------------------------------------------------------------------------------ uPU

@pytest.mark.parametrize("surrogate", ["sigmoid", "logistic"])
def test_upu_hand_value(surrogate):
    rpp, rpm, rum = np_parts(S, Y, surrogate)
    got = losses.upu_loss(tt(S), torch.tensor(Y), PRIOR, surrogate=surrogate).item()
    assert got == pytest.approx(PRIOR * rpp + rum - PRIOR * rpm, rel=1e-12)


def test_upu_closed_forms_of_the_two_surrogates():
    s, y = np.asarray(S), np.asarray(Y)
    p, u = s[y == 1], s[y == 0]
    # sigmoid: l(z,+1) + l(z,-1) = 1  ->  2 pi R_p^+ + R_u^- - pi
    sigmoid = 2 * PRIOR * sig(-p).mean() + sig(u).mean() - PRIOR
    assert losses.upu_loss(tt(S), torch.tensor(Y), PRIOR).item() == pytest.approx(sigmoid, rel=1e-12)
    # logistic: l(z,+1) - l(z,-1) = -z  ->  pi E_P[-z] + R_u^-
    logistic = PRIOR * (-p).mean() + softplus(u).mean()
    got = losses.upu_loss(tt(S), torch.tensor(Y), PRIOR, "logistic").item()
    assert got == pytest.approx(logistic, rel=1e-12)


def test_upu_goes_negative_without_clamp():
    got = losses.upu_loss(tt(S_OVER), torch.tensor(Y_OVER), 0.5).item()
    rpp, rpm, rum = np_parts(S_OVER, Y_OVER, "sigmoid")
    assert got < 0 and got == pytest.approx(0.5 * rpp + rum - 0.5 * rpm, rel=1e-12)


@pytest.mark.parametrize("surrogate", ["sigmoid", "logistic"])
def test_upu_gradient_by_hand(surrogate):
    s = tt(S, grad=True)
    losses.upu_loss(s, torch.tensor(Y), PRIOR, surrogate).backward()
    z, y = np.asarray(S), np.asarray(Y)
    n_p, n_u = (y == 1).sum(), (y == 0).sum()
    if surrogate == "sigmoid":  # d/dz [2 pi sig(-z)] / n_p and d/dz sig(z) / n_u
        expected = np.where(y == 1, -2 * PRIOR * sig(z) * (1 - sig(z)) / n_p, sig(z) * (1 - sig(z)) / n_u)
    else:  # d/dz [-pi z] / n_p and d/dz softplus(z) / n_u
        expected = np.where(y == 1, -PRIOR / n_p, sig(z) / n_u)
    np.testing.assert_allclose(s.grad.numpy(), expected, rtol=1e-12)


# ------------------------------------------------------------------------------- nnPU and parts

@pytest.mark.parametrize("scores,labels,prior", [(S, Y, PRIOR), (S_OVER, Y_OVER, 0.5)])
@pytest.mark.parametrize("beta,gamma", [(0.0, 1.0), (0.1, 0.5)])
def test_nnpu_risk_sigmoid_is_nnpu_loss(scores, labels, prior, beta, gamma):
    r = losses.nnpu_risk(tt(scores), torch.tensor(labels), prior, "sigmoid", beta, gamma)
    old = losses.nnpu_loss(tt(scores), torch.tensor(labels), prior, beta, gamma)
    assert r.loss.item() == pytest.approx(old.item(), rel=1e-12)


@pytest.mark.parametrize("surrogate", ["sigmoid", "logistic"])
def test_nnpu_risk_parts_and_flag_by_hand(surrogate):
    for scores, labels, prior in ((S, Y, PRIOR), (S_OVER, Y_OVER, 0.5)):
        rpp, rpm, rum = np_parts(scores, labels, surrogate)
        pos, neg = prior * rpp, rum - prior * rpm
        r = losses.nnpu_risk(tt(scores), torch.tensor(labels), prior, surrogate, gamma=0.7)
        assert r.positive_risk.item() == pytest.approx(pos, rel=1e-12)
        assert r.negative_risk.item() == pytest.approx(neg, rel=1e-12)
        assert r.fired is bool(neg < 0)
        assert r.loss.item() == pytest.approx(-0.7 * neg if neg < 0 else pos + neg, rel=1e-12)


def test_nnpu_risk_fires_on_the_overfitted_batch_for_both_surrogates_and_beta_moves_the_threshold():
    for surrogate in losses.PU_SURROGATES:
        r = losses.nnpu_risk(tt(S_OVER), torch.tensor(Y_OVER), 0.5, surrogate)
        assert r.fired and r.negative_risk.item() < 0
        assert not losses.nnpu_risk(tt(S), torch.tensor(Y), PRIOR, surrogate).fired
        neg = r.negative_risk.item()  # beta just above -neg: the correction does not fire
        assert not losses.nnpu_risk(tt(S_OVER), torch.tensor(Y_OVER), 0.5, surrogate, beta=-neg + 1e-6).fired


@pytest.mark.parametrize("surrogate", ["sigmoid", "logistic"])
def test_nnpu_risk_correction_raises_the_unlabelled_scores(surrogate):
    s = tt(S_OVER, grad=True)
    r = losses.nnpu_risk(s, torch.tensor(Y_OVER), 0.5, surrogate)
    r.loss.backward()
    assert r.fired and torch.all(s.grad[2:] < 0)  # descent on -gamma*r pushes the unlabelled up


def test_logistic_loss():
    z = tt([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(losses.logistic_loss(z, 1).numpy(), np.log1p(np.exp(-z.numpy())), rtol=1e-12)
    np.testing.assert_allclose(losses.logistic_loss(z, -1).numpy(), np.log1p(np.exp(z.numpy())), rtol=1e-12)


# -------------------------------------------------------------------------------------------- VPU

def np_vpu(scores, labels, marginal):
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    x = s if marginal == "all" else s[y == 0]
    return np.log(sig(x).mean()) - np.log(sig(s[y == 1])).mean()


@pytest.mark.parametrize("marginal", ["all", "unlabelled"])
def test_vpu_hand_value(marginal):
    got = losses.vpu_loss(tt(S), torch.tensor(Y), marginal).item()
    assert got == pytest.approx(np_vpu(S, Y, marginal), rel=1e-12)


def test_vpu_gradient_by_hand():
    s = tt(S, grad=True)
    losses.vpu_loss(s, torch.tensor(Y)).backward()
    z, y = np.asarray(S), np.asarray(Y)
    phi = sig(z)  # d log mean(phi) / dz_i = phi_i (1 - phi_i) / sum(phi); d log phi_i / dz_i = 1 - phi_i
    expected = phi * (1 - phi) / phi.sum() - np.where(y == 1, (1 - phi) / (y == 1).sum(), 0.0)
    np.testing.assert_allclose(s.grad.numpy(), expected, rtol=1e-12)


def test_vpu_is_stable_for_extreme_scores():
    s = tt([60.0, 50.0, -800.0, -900.0], grad=True)
    loss = losses.vpu_loss(s, torch.tensor([1, 1, 0, 0]), "unlabelled")
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(s.grad))


def test_vpu_mixup_penalty_hand_value_and_zero_at_its_target():
    mixed, marg, lam = [0.3, -1.2, 2.0], [1.0, -0.5, 0.0], 0.3
    target = lam * sig(marg) + (1 - lam)
    expected = ((np.log(target) - np.log(sig(mixed))) ** 2).mean()
    got = losses.vpu_mixup_penalty(tt(mixed), tt(marg), lam).item()
    assert got == pytest.approx(expected, rel=1e-12)
    # lam = 1: the target is Phi(x) itself, so scoring the (unmixed) x as before costs nothing
    assert losses.vpu_mixup_penalty(tt(marg), tt(marg), 1.0).item() == pytest.approx(0.0, abs=1e-15)
    m = tt(mixed, grad=True)
    losses.vpu_mixup_penalty(m, tt(marg), lam).backward()
    assert torch.all(torch.isfinite(m.grad)) and torch.any(m.grad != 0)


# ---------------------------------------------------------------------------- weighted naive PN

def test_weighted_naive_hand_value_and_sklearn_balanced_weights():
    from sklearn.utils.class_weight import compute_class_weight

    z, y = np.asarray(S), np.asarray(Y)
    expected = 0.5 * softplus(-z[y == 1]).mean() + 0.5 * softplus(z[y == 0]).mean()
    got = losses.weighted_naive_pu_loss(tt(S), torch.tensor(Y)).item()
    assert got == pytest.approx(expected, rel=1e-12)
    w = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)[y]  # n / (2 n_c)
    bce = F.binary_cross_entropy_with_logits(tt(S), tt(Y), weight=tt(w)).item()
    assert got == pytest.approx(bce, rel=1e-12)
    # unweighted BCE differs here (2 vs 3 examples per class)
    assert got != pytest.approx(losses.naive_pu_loss(tt(S), torch.tensor(Y)).item(), rel=1e-6)


def test_weighted_naive_gradient_flows_to_every_score():
    s = tt(S, grad=True)
    losses.weighted_naive_pu_loss(s, torch.tensor(Y)).backward()
    y = np.asarray(Y)
    expected = np.where(y == 1, -0.5 * sig(-np.asarray(S)) / 2, 0.5 * sig(np.asarray(S)) / 3)
    np.testing.assert_allclose(s.grad.numpy(), expected, rtol=1e-12)


# ------------------------------------------------- the kinds a run trains with (losses.pu_loss)

@pytest.mark.parametrize("surrogate", ["sigmoid", "logistic"])
def test_pu_loss_upu_hand_value_and_parts(surrogate):
    rpp, rpm, rum = np_parts(S, Y, surrogate)
    r = losses.pu_loss("upu", prior=PRIOR, surrogate=surrogate).risk(tt(S), torch.tensor(Y))
    assert r.positive_risk.item() == pytest.approx(PRIOR * rpp, rel=1e-12)
    assert r.negative_risk.item() == pytest.approx(rum - PRIOR * rpm, rel=1e-12)
    assert r.loss.item() == pytest.approx(PRIOR * rpp + rum - PRIOR * rpm, rel=1e-12) and r.fired is False
    over = losses.pu_loss("upu", prior=0.5).risk(tt(S_OVER), torch.tensor(Y_OVER))  # no correction: stays negative
    assert over.negative_risk.item() < 0 and over.fired is False and over.loss.item() < 0


def test_pu_loss_naive_weighted_hand_value():
    z, y = np.asarray(S), np.asarray(Y)
    expected = 0.5 * softplus(-z[y == 1]).mean() + 0.5 * softplus(z[y == 0]).mean()
    r = losses.pu_loss("naive_weighted").risk(tt(S), torch.tensor(Y))
    assert r.loss.item() == pytest.approx(expected, rel=1e-12)
    assert r.positive_risk is None and r.negative_risk is None and r.fired is False


def np_vpu_full(scores, labels, lam, j, weight):
    """VPU with MixUp on the scores, by hand: the variational loss + weight * the log-MSE penalty."""
    z, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    mixed = lam * z + (1 - lam) * z[y == 1][j]
    penalty = ((np.log(lam * sig(z) + (1 - lam)) - np.log(sig(mixed))) ** 2).mean()
    return np_vpu(scores, labels, "all") + weight * penalty


def test_vpu_risk_hand_value_with_its_draws():
    from scipy.stats import beta

    g = torch.Generator().manual_seed(3)
    u = torch.rand((), generator=g, dtype=torch.float64).item()
    j = torch.randint(2, (5,), generator=g).numpy()
    lam = beta.ppf(u, 0.3, 0.3)
    r = losses.vpu_risk(tt(S), torch.tensor(Y), 0.03, 0.3, torch.Generator().manual_seed(3))
    assert r.loss.item() == pytest.approx(np_vpu_full(S, Y, lam, j, 0.03), rel=1e-12)
    assert r.positive_risk is None and r.fired is False
    # weight 0: the variational loss alone
    r0 = losses.vpu_risk(tt(S), torch.tensor(Y), 0.0, 0.3, torch.Generator().manual_seed(3))
    assert r0.loss.item() == pytest.approx(np_vpu(S, Y, "all"), rel=1e-12)


def test_pu_loss_vpu_draws_from_torch_s_global_generator():
    torch.manual_seed(11)
    got = losses.pu_loss("vpu")(tt(S), torch.tensor(Y)).item()
    ref = losses.vpu_risk(tt(S), torch.tensor(Y), losses.VPU_MIX_WEIGHT, losses.VPU_MIX_ALPHA,
                          torch.Generator().manual_seed(11)).loss.item()
    assert got == ref and (losses.VPU_MIX_WEIGHT, losses.VPU_MIX_ALPHA) == (0.03, 0.3)


def test_vpu_output_mixup_is_mixup_at_an_affine_head_and_lam_is_beta_distributed():
    from scipy.stats import kstest

    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 4, generator=g, dtype=torch.float64)  # representations at the head's input
    w, b = torch.randn(4, generator=g, dtype=torch.float64), 0.7
    scores, labels = h @ w + b, torch.tensor(Y)
    mixed, lam = losses.vpu_output_mixup(scores, labels, 0.3, torch.Generator().manual_seed(5))
    g5 = torch.Generator().manual_seed(5)
    torch.rand((), generator=g5, dtype=torch.float64)
    j = torch.randint(2, (5,), generator=g5)
    h_mix = lam * h + (1 - lam) * h[labels == 1][j]  # mixing the head's inputs ...
    torch.testing.assert_close(mixed, h_mix @ w + b, rtol=1e-12, atol=1e-12)  # ... gives the mixed scores
    lams = [losses.vpu_output_mixup(scores, labels, 0.3, g)[1] for _ in range(1000)]
    assert kstest(lams, "beta", args=(0.3, 0.3)).pvalue > 0.01


@pytest.mark.parametrize("kind", losses.PU_KINDS)
def test_every_kind_gives_a_finite_loss_and_gradient(kind):
    s = tt(S, grad=True)
    losses.pu_loss(kind, prior=PRIOR)(s, torch.tensor(Y)).backward()
    assert torch.all(torch.isfinite(s.grad)) and torch.any(s.grad != 0)


def test_pu_loss_checks_the_new_kinds_arguments():
    with pytest.raises(ValueError, match="prior"):
        losses.pu_loss("upu")
    for bad in (dict(mix_weight=-0.1), dict(mix_alpha=0.0), dict(mix_alpha=float("nan"))):
        with pytest.raises(ValueError, match="MixUp"):
            losses.pu_loss("vpu", **bad)
    assert losses.pu_loss("vpu").prior is None and losses.pu_loss("naive_weighted").prior is None


# --------------------------------------------------------------------------------- loss errors

@pytest.mark.parametrize("call", [
    lambda s, y: losses.upu_loss(s, y, 0.0),
    lambda s, y: losses.upu_loss(s, y, 1.0),
    lambda s, y: losses.nnpu_risk(s, y, 1.5),
])
def test_losses_reject_prior_outside_0_1(call):
    with pytest.raises(ValueError, match="prior"):
        call(tt(S), torch.tensor(Y))


@pytest.mark.parametrize("fn", [
    lambda s, y: losses.upu_loss(s, y, 0.3), lambda s, y: losses.nnpu_risk(s, y, 0.3, "logistic"),
    losses.vpu_loss, losses.weighted_naive_pu_loss,
])
def test_losses_reject_batches_without_labelled_positives_and_bad_labels(fn):
    with pytest.raises(ValueError, match="without labelled positives"):
        fn(tt([0.1, 0.2]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="1 \\(labelled positive\\) or 0"):
        fn(tt([0.1, 0.2]), torch.tensor([1, 2]))


def test_losses_reject_unknown_options_and_missing_unlabelled():
    with pytest.raises(ValueError, match="surrogate"):
        losses.upu_loss(tt(S), torch.tensor(Y), 0.3, surrogate="hinge")
    with pytest.raises(ValueError, match="marginal"):
        losses.vpu_loss(tt(S), torch.tensor(Y), marginal="positives")
    with pytest.raises(ValueError, match="without unlabelled"):
        losses.weighted_naive_pu_loss(tt([0.1, 0.2]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="without unlabelled"):
        losses.vpu_loss(tt([0.1, 0.2]), torch.tensor([1, 1]), marginal="unlabelled")
    with pytest.raises(ValueError, match="lam"):
        losses.vpu_mixup_penalty(tt([0.1]), tt([0.2]), 1.5)


# ================================================================ pu_select: synthetic SCAR data

def scar(n, prior, c, sep, seed):
    """Two unit-variance Gaussians on the line, means -sep/2 and +sep/2; positive share `prior`; a
    fraction c of the positives labelled completely at random. Returns x (n, 1), true y, PU label s."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prior).astype(int)
    x = rng.normal(size=(n, 1)) + np.where(y[:, None] == 1, sep / 2, -sep / 2)
    s = y * (rng.random(n) < c)
    return x, y, s


def true_logit(x, sep, prior):
    """log P(y=1|x) / P(y=0|x) for `scar`'s Gaussians: the Bayes score."""
    return sep * x[:, 0] + np.log(prior / (1 - prior))


# --------------------------------------------------------------------------------- criteria

def test_pu_risk_hand_values():
    # zero-one at threshold 0: labelled [2, -1] -> [z<=0] = [0, 1], [z>0] = [1, 0];
    # unlabelled [0.5, -0.5, 1.5] -> [z>0] = [1, 0, 1]:  R = 0.4 * 1/2 + 2/3 - 0.4 * 1/2 = 2/3
    assert ps.pu_risk(S, Y, PRIOR, "zero_one") == pytest.approx(2 / 3, rel=1e-12)
    # threshold 1: labelled z = [1, -2] -> [z<=0] = [0, 1]; unlabelled z = [-0.5, -1.5, 0.5] -> [0, 0, 1]
    assert ps.pu_risk(S, Y, PRIOR, "zero_one", threshold=1.0) == pytest.approx(0.2 + 1 / 3 - 0.2, rel=1e-12)
    rpp, rpm, rum = np_parts(S, Y, "sigmoid")
    assert ps.pu_risk(S, Y, PRIOR) == pytest.approx(PRIOR * rpp + rum - PRIOR * rpm, rel=1e-12)


def test_pu_risk_sigmoid_is_upu_loss_and_variational_criterion_is_vpu_loss():
    g = np.random.default_rng(3)
    s, y = g.normal(size=50) * 2, (g.random(50) < 0.3).astype(int)
    assert ps.pu_risk(s, y, 0.25) == pytest.approx(losses.upu_loss(tt(s), torch.tensor(y), 0.25).item(), rel=1e-12)
    for m in ("all", "unlabelled"):
        assert ps.variational_criterion(s, y, m) == pytest.approx(
            losses.vpu_loss(tt(s), torch.tensor(y), m).item(), rel=1e-12)


def test_lu_auc_hand_value():
    # labelled [3, 1] vs unlabelled [2, 0, 1]: 3 beats all three; 1 beats 0, ties 1, loses to 2
    assert ps.lu_auc([3, 1, 2, 0, 1], [1, 1, 0, 0, 0]) == pytest.approx((3 + 1.5) / 6)


def test_pn_auc_from_lu_inverts_the_scar_map():
    for auc_pn, pi in ((0.9, 0.3), (0.6, 0.1), (1.0, 0.5)):
        assert ps.pn_auc_from_lu(pi / 2 + (1 - pi) * auc_pn, pi) == pytest.approx(auc_pn, rel=1e-12)


def test_on_scar_data_pu_criteria_estimate_the_true_ones():
    """Under SCAR the zero-one PU risk estimates the error on the unlabelled distribution and
    pn_auc_from_lu(lu_auc) the true ROC-AUC (tolerances ~4 standard errors at n = 20000)."""
    from sklearn.metrics import roc_auc_score

    sep, prior = 2.0, 0.3
    x, y, s = scar(20_000, prior, 0.4, sep, seed=0)
    z = true_logit(x, sep, prior)
    unl = s == 0
    pi_u = y[unl].mean()
    error_u = pi_u * (z[unl & (y == 1)] <= 0).mean() + (1 - pi_u) * (z[unl & (y == 0)] > 0).mean()
    assert ps.pu_risk(z, s, pi_u, "zero_one") == pytest.approx(error_u, abs=0.02)
    assert ps.pn_auc_from_lu(ps.lu_auc(z, s), pi_u) == pytest.approx(roc_auc_score(y, z), abs=0.015)


def test_criteria_rank_a_better_classifier_above_a_worse_one():
    from sklearn.metrics import roc_auc_score

    sep, prior = 2.0, 0.3
    x, y, s = scar(10_000, prior, 0.4, sep, seed=1)
    good = true_logit(x, sep, prior)
    bad = good + np.random.default_rng(2).normal(scale=3.0, size=len(good))  # the same, blurred
    assert roc_auc_score(y, good) > roc_auc_score(y, bad) + 0.05  # the premise, with the true labels
    pi_u = y[s == 0].mean()
    assert ps.lu_auc(good, s) > ps.lu_auc(bad, s)
    for loss in ps.PU_RISK_LOSSES:
        assert ps.pu_risk(good, s, pi_u, loss) < ps.pu_risk(bad, s, pi_u, loss)
    assert ps.variational_criterion(good, s) < ps.variational_criterion(bad, s)


# ------------------------------------------------------------------------------ class prior

def test_elkan_noto_c_hand_values():
    g, s = [0.6, 0.4, 0.2, 0.1, 0.7], [1, 1, 0, 0, 0]
    assert ps.elkan_noto_c(g, s, "e1") == pytest.approx(0.5)
    assert ps.elkan_noto_c(g, s, "e2") == pytest.approx(1.0 / 2.0)
    assert ps.elkan_noto_c(g, s, "e3") == pytest.approx(0.7)


def test_prior_from_c_by_hand_and_agrees_with_kdlib_pu():
    # s = 0.2 labelled, c = 0.5 -> pi = 0.4, pi_u = (0.4 - 0.2) / 0.8 = 0.25
    assert ps.prior_from_c(0.5, 0.2, "all") == pytest.approx(0.4)
    assert ps.prior_from_c(0.5, 0.2) == pytest.approx(0.25)
    for pi, c in ((0.4, 0.5), (0.1, 0.3), (0.7, 0.9)):
        assert ps.prior_from_c(c, pi * c) == pytest.approx(pu.unlabelled_prior(pi, c), rel=1e-12)
    # c below the labelled share would mean more positives than rows: clipped
    assert ps.prior_from_c(0.1, 0.2, "all") == 1.0 and ps.prior_from_c(0.1, 0.2) == 1.0


def elkan_noto_on_scar(sep, prior, c, seed, n=20_000):
    """g = P(labelled | x) by logistic regression on a cubic-spline basis of x, fitted on one half;
    returns g on the other (held-out) half, its PU labels, and its true prior (whole, unlabelled).
    The spline basis matters: P(labelled | x) = c P(y=1|x) levels off at c, which a logistic
    function of x itself cannot do (it tends to 1), and plain linear LR misses c by 0.05 or more."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    x, y, s = scar(n, prior, c, sep, seed)
    h = n // 2
    model = make_pipeline(SplineTransformer(n_knots=6, degree=3), LogisticRegression(C=10, max_iter=1000))
    g = model.fit(x[:h], s[:h]).predict_proba(x[h:])[:, 1]
    yh, sh = y[h:], s[h:]
    return g, sh, yh.mean(), yh[sh == 0].mean()


@pytest.mark.parametrize("prior,c,seed", [(0.3, 0.5, 0), (0.2, 0.3, 1), (0.1, 0.5, 2)])
def test_elkan_noto_prior_on_nearly_separable_scar_data(prior, c, seed):
    """Classes 6 sd apart (the estimators' premise: g = c where the class is certain), 10000
    held-out rows: e1's prior within 0.03 of the held-out half's true one (whole set and unlabelled
    part; the binomial noise of the labelling alone is ~0.01 at these sizes), e2's within 0.015."""
    g, s, true_all, true_u = elkan_noto_on_scar(6.0, prior, c, seed)
    assert ps.elkan_noto_prior(g, s, "e1", part="all") == pytest.approx(true_all, abs=0.03)
    assert ps.elkan_noto_prior(g, s, "e1") == pytest.approx(true_u, abs=0.03)
    assert ps.elkan_noto_prior(g, s, "e2", part="all") == pytest.approx(true_all, abs=0.015)
    assert ps.elkan_noto_prior(g, s, "e2") == pytest.approx(true_u, abs=0.015)


def test_elkan_noto_e1_overestimates_the_prior_when_classes_overlap():
    """With overlap, g = c P(y=1|x) < c on the positives, so e1 < c and the prior comes out high
    (documented bias); e3 = max g is the highest c estimate, so its prior the lowest."""
    g, s, true_all, _ = elkan_noto_on_scar(2.0, 0.3, 0.5, seed=0)
    e1, e3 = (ps.elkan_noto_prior(g, s, e, part="all") for e in ("e1", "e3"))
    assert e1 > true_all + 0.05 and e3 < e1


# ------------------------------------------------------------------------------ select errors

@pytest.mark.parametrize("prior", [0.0, 1.0, -0.2, 1.3])
def test_select_rejects_prior_outside_0_1(prior):
    with pytest.raises(ValueError, match="prior must be in \\(0, 1\\)"):
        ps.pu_risk(S, Y, prior)
    with pytest.raises(ValueError, match="prior must be in \\(0, 1\\)"):
        ps.pn_auc_from_lu(0.8, prior)


@pytest.mark.parametrize("call", [
    lambda s, y: ps.pu_risk(s, y, 0.3), lambda s, y: ps.lu_auc(s, y),
    lambda s, y: ps.variational_criterion(s, y), lambda s, y: ps.elkan_noto_c(np.full(len(s), 0.5), y),
    lambda s, y: ps.elkan_noto_prior(np.full(len(s), 0.5), y),
])
def test_select_rejects_data_without_labelled_examples_and_bad_labels(call):
    with pytest.raises(ValueError, match="no labelled positives"):
        call([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match="PU labels must be 1"):
        call([0.1, 0.2, 0.3], [1, 0, -1])


def test_select_rejects_other_bad_arguments():
    with pytest.raises(ValueError, match="no unlabelled"):
        ps.lu_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="no unlabelled"):
        ps.elkan_noto_prior([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="differ in length"):
        ps.pu_risk([0.1, 0.2], [1, 0, 0], 0.3)
    with pytest.raises(ValueError, match="loss must be one of"):
        ps.pu_risk(S, Y, 0.3, loss="hinge")
    with pytest.raises(ValueError, match="estimator must be one of"):
        ps.elkan_noto_c([0.5, 0.5], [1, 0], "e4")
    with pytest.raises(ValueError, match="probabilities"):
        ps.elkan_noto_c([2.0, -1.0], [1, 0])
    with pytest.raises(ValueError, match="c \\(the label frequency\\)"):
        ps.prior_from_c(0.0, 0.2)
    with pytest.raises(ValueError, match="labelled_share"):
        ps.prior_from_c(0.5, 1.0)
    with pytest.raises(ValueError, match="part must be one of"):
        ps.prior_from_c(0.5, 0.2, part="positives")


# ====================================================== pu_select: the prior of a run (issue 55.4)

def scar_tokens(n, prior, c, seed, length=30, vocab=40, own=0.9):
    """Token sequences: each token from its class's half of the vocabulary with probability `own`;
    positive share `prior`; a fraction c of the positives labelled completely at random. Returns
    (sequences, true y, PU labels)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prior).astype(int)
    half = vocab // 2
    seqs = [np.where((rng.random(length) < own) == (yi == 1), 0, half) + rng.integers(0, half, length) for yi in y]
    return seqs, y, y * (rng.random(n) < c)


@pytest.mark.parametrize("prior,c,seed", [(0.24, 0.2, 0), (0.1, 0.5, 1)])
def test_estimate_prior_on_scar_tokens(prior, c, seed):
    tr, _, s_tr = scar_tokens(1000, prior, c, seed)
    va, y_va, s_va = scar_tokens(1000, prior, c, seed + 100)
    est = ps.estimate_prior(tr, s_tr, va, s_va, seed=0)
    assert est["prior"] == pytest.approx(y_va[s_va == 0].mean(), abs=0.05)  # the unlabelled part's positive share
    assert est["pi"] == pytest.approx(y_va.mean(), abs=0.05)
    assert est["prior"] == pytest.approx(ps.prior_from_c(est["c"], s_va.mean()), rel=1e-12)
    assert est["val_lu_auc"] > 0.7 and est["estimator"] == "e1"
    assert ps.estimate_prior(tr, s_tr, va, s_va, seed=0) == est  # seeded: the same estimate again


def test_estimate_prior_positional_sees_where_a_token_sits():
    """The class shows only in the token at position 0 (1 for a positive); every sequence holds six 0s
    and six 1s, so a bag of tokens sees nothing and tokens by position see it all."""
    def make(n, seed):
        r = np.random.default_rng(seed)
        y = (r.random(n) < 0.3).astype(int)
        seqs = [np.concatenate([[yi], r.permutation([0] * (5 + yi) + [1] * (6 - yi))]) for yi in y]
        return seqs, y, y * (r.random(n) < 0.4)
    (tr, _, s_tr), (va, y_va, s_va) = make(2000, 1), make(1500, 2)
    positional = ps.estimate_prior(tr, s_tr, va, s_va, positional=True)
    assert positional["prior"] == pytest.approx(y_va[s_va == 0].mean(), abs=0.05)
    assert positional["val_lu_auc"] > ps.estimate_prior(tr, s_tr, va, s_va)["val_lu_auc"] + 0.2


def test_estimate_prior_needs_labelled_and_unlabelled_examples():
    seqs = [np.array([1, 2]), np.array([2, 3])]
    with pytest.raises(ValueError, match="no labelled positives"):
        ps.estimate_prior(seqs, [0, 0], seqs, [1, 0])
    with pytest.raises(ValueError, match="no unlabelled"):
        ps.estimate_prior(seqs, [1, 0], seqs, [1, 1])


def test_scale_prior():
    assert ps.scale_prior(0.2, 1.0) == 0.2 and ps.scale_prior(0.2, 1.5) == pytest.approx(0.3)
    assert ps.scale_prior(0.2, 0.5) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="prior_scale=6.0 .* must be in \\(0, 1\\)"):
        ps.scale_prior(0.2, 6.0)
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValueError, match="prior_scale must be > 0"):
            ps.scale_prior(0.2, bad)
    with pytest.raises(ValueError, match="must be in"):  # no positive in the unlabelled data (c = 1)
        ps.scale_prior(0.0, 1.0)
