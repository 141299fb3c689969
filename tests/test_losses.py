"""kdlib.losses against values computed by hand (numpy), torchdistill-style."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlib import losses

S = [1.5, -0.5, 2.0, -1.0]  # student logits
TT = [2.0, -1.5, 0.5, 0.3]  # teacher logits
Y = [1.0, 0.0, 1.0, 0.0]


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def np_kd(s, t, y, T, alpha):
    """(1 - alpha) BCE(s, y) + alpha T^2 KL(Bern(sigmoid(t/T)) || Bern(sigmoid(s/T))), batch means."""
    s, t, y = (np.asarray(v, dtype=np.float64) for v in (s, t, y))
    q, p = np_sigmoid(s / T), np_sigmoid(t / T)
    kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    bce = -(y * np.log(np_sigmoid(s)) + (1 - y) * np.log(1 - np_sigmoid(s)))
    return (1 - alpha) * bce.mean() + alpha * T * T * kl.mean()


def tt(v, grad=False):
    return torch.tensor(v, dtype=torch.float64, requires_grad=grad)


# ------------------------------------------------------------------------------------------ KD

# (T, alpha, expected) -- the expected numbers were computed once with np_kd above.
KD_CASES = [
    (1.0, 0.5, 0.2057057117510887),
    (2.0, 0.5, 0.21604547231293728),
    (4.0, 0.9, 0.17171461112828812),
    (2.0, 0.0, 0.2789199901810136),   # labels only: plain BCE
    (3.0, 1.0, 0.15801110874727367),  # soft targets only
]


@pytest.mark.parametrize("T,alpha,expected", KD_CASES)
def test_kd_loss_regression_values(T, alpha, expected):
    got = losses.kd_loss(tt(S), tt(TT), tt(Y), T=T, alpha=alpha).item()
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert got == pytest.approx(np_kd(S, TT, Y, T, alpha), rel=1e-10)


def test_kd_loss_alpha0_is_bce_and_alpha1_needs_no_labels():
    s = tt(S)
    assert losses.kd_loss(s, None, tt(Y), T=2.0, alpha=0.0).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(s, tt(Y)).item(), rel=1e-12)
    assert losses.kd_loss(s, tt(TT), None, T=3.0, alpha=1.0).item() == pytest.approx(0.15801110874727367, rel=1e-10)
    with pytest.raises(ValueError):
        losses.kd_loss(s, tt(TT), None, T=2.0, alpha=0.5)
    with pytest.raises(ValueError):
        losses.kd_loss(s, None, tt(Y), T=2.0, alpha=0.5)


def test_kd_loss_keeps_input_precision():
    # integer labels with float64 logits: the BCE half must be computed in float64 too
    got = losses.kd_loss(tt(S), tt(TT), torch.tensor([1, 0, 1, 0]), T=2.0, alpha=0.5)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(0.21604547231293728, rel=1e-12)
    got32 = losses.kd_loss(tt(S).float(), tt(TT).float(), torch.tensor([1, 0, 1, 0]), T=2.0, alpha=0.5)
    assert got32.dtype == torch.float32 and got32.item() == pytest.approx(0.21604547231293728, rel=1e-6)


def test_kd_loss_zero_when_student_matches_teacher_soft_only():
    t = tt(TT)
    assert losses.kd_loss(t.clone(), t, None, T=2.5, alpha=1.0).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("T", [0.0, -1.0, float("nan")])
def test_kd_loss_rejects_bad_temperature(T):
    with pytest.raises(ValueError, match="T must be > 0"):
        losses.kd_loss(tt(S), tt(TT), tt(Y), T=T, alpha=0.5)
    with pytest.raises(ValueError):
        losses.soft_target_loss(tt(S), tt(TT), T=T)


@pytest.mark.parametrize("alpha", [-0.1, 1.01, float("nan")])
def test_kd_loss_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        losses.kd_loss(tt(S), tt(TT), tt(Y), T=2.0, alpha=alpha)


def _soft_grad(s_val, t_val, T, scaled=True):
    s = tt([s_val], grad=True)
    loss = losses.soft_target_loss(s, tt([t_val]), T)
    if not scaled:
        loss = loss / (T * T)  # the plain KL(sigmoid(t/T) || sigmoid(s/T)), without the T^2 factor
    loss.backward()
    return s.grad.item()


def test_soft_target_gradient_matches_closed_form():
    # d/ds [T^2 KL(p || sigmoid(s/T))] = T (sigmoid(s/T) - sigmoid(t/T))
    for T in (1.0, 2.0, 5.0):
        expected = T * (np_sigmoid(1.2 / T) - np_sigmoid(-0.7 / T))
        assert _soft_grad(1.2, -0.7, T) == pytest.approx(expected, rel=1e-9)


def test_T_squared_keeps_soft_target_gradient_scale():
    s, t = 1.2, -0.7
    # With T^2: for large T, grad -> (s - t) / 4 (sigmoid'(0) = 1/4), independent of T.
    g10, g100, g1000 = (_soft_grad(s, t, T) for T in (10.0, 100.0, 1000.0))
    assert g1000 == pytest.approx((s - t) / 4, rel=1e-5)
    assert g100 == pytest.approx((s - t) / 4, rel=1e-3)
    assert g10 / g100 == pytest.approx(1.0, rel=0.01)
    # Without it the gradient shrinks like 1/T^2: ~ (s - t) / (4 T^2).
    u10, u100 = _soft_grad(s, t, 10.0, scaled=False), _soft_grad(s, t, 100.0, scaled=False)
    assert u100 == pytest.approx((s - t) / (4 * 100.0**2), rel=1e-3)
    assert u10 / u100 == pytest.approx(100.0, rel=0.01)


def _two_class_kd(s, t, y, T, alpha, offset=0.0):
    """Hinton softmax KD on 2-class logits [offset, offset + z] via F.kl_div and F.cross_entropy."""
    s2 = torch.stack([torch.full_like(s, offset), offset + s], dim=1)
    t2 = torch.stack([torch.full_like(t, -offset), -offset + t], dim=1)  # a different offset for the teacher
    kl = F.kl_div(F.log_softmax(s2 / T, dim=1), F.softmax(t2 / T, dim=1), reduction="batchmean")
    ce = F.cross_entropy(s2, y.long())
    return alpha * T * T * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (2.0, 0.3), (5.0, 0.9), (3.0, 1.0), (2.0, 0.0)])
@pytest.mark.parametrize("offset", [0.0, 3.7, -11.0])
def test_sigmoid_kd_equals_two_class_softmax_kd(T, alpha, offset):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(16, generator=g, dtype=torch.float64) * 3
    t = torch.randn(16, generator=g, dtype=torch.float64) * 3
    y = (torch.rand(16, generator=g) < 0.5).double()
    s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
    ours = losses.kd_loss(s1, t, y, T=T, alpha=alpha)
    ref = _two_class_kd(s2, t, y, T, alpha, offset)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-8, atol=1e-12)


def test_gradients_flow_to_student_only():
    s = tt(S, grad=True)
    t = tt(TT, grad=True)
    losses.kd_loss(s, t, tt(Y), T=2.0, alpha=0.7).backward()
    assert s.grad is not None and torch.any(s.grad != 0)
    assert t.grad is None
    s.grad = None
    losses.soft_target_loss(s, t, T=2.0).backward()
    assert t.grad is None and torch.any(s.grad != 0)


def test_kd_loss_stable_for_extreme_logits():
    s = tt([80.0, -80.0], grad=True)
    loss = losses.kd_loss(s, tt([-90.0, 95.0]), tt([0.0, 1.0]), T=1.0, alpha=0.5)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.all(torch.isfinite(s.grad))


# ----------------------------------------------------------------------------------------- nnPU

def np_pu_parts(scores, labels, prior):
    """R_p^+, and r = R_u^- - prior R_p^-, with the sigmoid loss l(z, y) = sigmoid(-y z)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    p, u = scores[labels == 1], scores[labels == 0]
    r_p_plus = np_sigmoid(-p).mean()
    r_p_minus = np_sigmoid(p).mean()
    r_u_minus = np_sigmoid(u).mean()
    return r_p_plus, r_u_minus - prior * r_p_minus


# positive negative-risk case: r >= -beta -> prior R_p^+ + r
POS_SCORES, POS_LABELS, POS_PRIOR = [2.0, -1.0, 1.0, 2.0, 0.5], [1, 1, 0, 0, 0], 0.3
# over-fitted case: unlabelled scored very low, positives very high -> r < 0
NEG_SCORES, NEG_LABELS, NEG_PRIOR = [3.0, 4.0, -5.0, -6.0], [1, 1, 0, 0], 0.5


def test_sigmoid_loss():
    z = tt([-2.0, 0.0, 3.0])
    torch.testing.assert_close(losses.sigmoid_loss(z, 1), torch.sigmoid(-z))
    torch.testing.assert_close(losses.sigmoid_loss(z, -1), torch.sigmoid(z))


def test_nnpu_nonnegative_branch_value():
    rpp, r = np_pu_parts(POS_SCORES, POS_LABELS, POS_PRIOR)
    assert r >= 0
    expected = POS_PRIOR * rpp + r
    assert expected == pytest.approx(0.6998501127988841, rel=1e-12)  # precomputed
    got = losses.nnpu_loss(tt(POS_SCORES), torch.tensor(POS_LABELS), POS_PRIOR).item()
    assert got == pytest.approx(expected, rel=1e-10)


def test_nnpu_negative_risk_branch_returns_minus_gamma_r():
    rpp, r = np_pu_parts(NEG_SCORES, NEG_LABELS, NEG_PRIOR)
    assert r == pytest.approx(-0.4790642421746257, rel=1e-12)  # precomputed
    for gamma in (1.0, 0.5):
        got = losses.nnpu_loss(tt(NEG_SCORES), torch.tensor(NEG_LABELS), NEG_PRIOR, beta=0.0, gamma=gamma)
        assert got.item() == pytest.approx(-gamma * r, rel=1e-10)
    # the step taken on -gamma*r pushes r back up: gradient descent raises the unlabelled scores
    s = tt(NEG_SCORES, grad=True)
    losses.nnpu_loss(s, torch.tensor(NEG_LABELS), NEG_PRIOR).backward()
    assert torch.all(s.grad[2:] < 0)


def test_nnpu_beta_threshold_switches_branch():
    rpp, r = np_pu_parts(NEG_SCORES, NEG_LABELS, NEG_PRIOR)  # r ~ -0.479
    scores, labels = tt(NEG_SCORES), torch.tensor(NEG_LABELS)
    # r >= -beta: the unclipped risk, even though r is negative
    got = losses.nnpu_loss(scores, labels, NEG_PRIOR, beta=0.5).item()
    assert got == pytest.approx(NEG_PRIOR * rpp + r, rel=1e-10)
    assert got < 0
    # r < -beta: the correction
    got = losses.nnpu_loss(scores, labels, NEG_PRIOR, beta=0.4, gamma=2.0).item()
    assert got == pytest.approx(-2.0 * r, rel=1e-10)


@pytest.mark.parametrize("scores,labels,prior,target", [
    (POS_SCORES, POS_LABELS, POS_PRIOR, 0.5),
    (NEG_SCORES, NEG_LABELS, 0.3, 0.5),
    (NEG_SCORES, NEG_LABELS, 0.2, 0.6),
])
def test_imbalanced_nnpu_hand_values(scores, labels, prior, target):
    rpp, r = np_pu_parts(scores, labels, prior)
    w = (1 - target) / (1 - prior)
    expected = target * rpp + w * r if w * r >= 0 else -w * r
    got = losses.imbalanced_nnpu_loss(tt(scores), torch.tensor(labels), prior, target_prior=target).item()
    assert got == pytest.approx(expected, rel=1e-10)


def test_imbalanced_nnpu_both_branches_precomputed():
    # prior 0.3, target 0.5, positive branch: 0.5 * R_p^+ + (0.5 / 0.7) * r
    got = losses.imbalanced_nnpu_loss(tt(POS_SCORES), torch.tensor(POS_LABELS), 0.3, 0.5).item()
    assert got == pytest.approx(0.6213588663780776, rel=1e-10)
    # prior = target = 0.5 (w = 1), negative branch: -r
    got = losses.imbalanced_nnpu_loss(tt(NEG_SCORES), torch.tensor(NEG_LABELS), 0.5, 0.5).item()
    assert got == pytest.approx(0.4790642421746257, rel=1e-10)


@pytest.mark.parametrize("prior", [0.1, 0.3, 0.5, 0.8])
def test_imbalanced_with_target_equal_prior_is_nnpu(prior):
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(40, generator=g, dtype=torch.float64) * 2
    labels = (torch.rand(40, generator=g) < 0.3).long()
    for beta, gamma in ((0.0, 1.0), (0.1, 0.5)):
        a = losses.nnpu_loss(scores, labels, prior, beta, gamma)
        b = losses.imbalanced_nnpu_loss(scores, labels, prior, target_prior=prior, beta=beta, gamma=gamma)
        assert a.item() == pytest.approx(b.item(), rel=1e-12, abs=1e-15)


def test_pu_labels_must_be_binary():
    with pytest.raises(ValueError):
        losses.nnpu_loss(tt([0.1, 0.2]), torch.tensor([1, -1]), 0.3)


def test_pu_loss_factory():
    s, y = tt(POS_SCORES), torch.tensor(POS_LABELS)
    assert losses.pu_loss("nnpu", prior=POS_PRIOR)(s, y).item() == pytest.approx(0.6998501127988841, rel=1e-10)
    assert losses.pu_loss("imbalanced_nnpu", prior=0.3, target_prior=0.5)(s, y).item() == pytest.approx(
        0.6213588663780776, rel=1e-10)
    bce = F.binary_cross_entropy_with_logits(s, y.double()).item()
    # float64 scores stay float64 (integer labels must not drag the loss down to float32)
    assert losses.pu_loss("naive")(s, y).item() == pytest.approx(bce, rel=1e-12)
    assert losses.pu_loss("supervised")(s, y).item() == pytest.approx(bce, rel=1e-12)


@pytest.mark.parametrize("kind", ["nnPU", "dist_pu", "", "bce"])
def test_pu_loss_rejects_unknown_kind(kind):
    with pytest.raises(ValueError, match="unknown PU loss kind"):
        losses.pu_loss(kind, prior=0.3)


@pytest.mark.parametrize("kind", ["nnpu", "imbalanced_nnpu"])
@pytest.mark.parametrize("prior", [None, 0.0, 1.0, -0.2, 1.5])
def test_pu_loss_rejects_bad_prior(kind, prior):
    with pytest.raises(ValueError, match="prior"):
        losses.pu_loss(kind, prior=prior)


@pytest.mark.parametrize("target", [0.0, 1.0, 2.0])
def test_pu_loss_rejects_bad_target_prior(target):
    with pytest.raises(ValueError, match="target_prior"):
        losses.pu_loss("imbalanced_nnpu", prior=0.3, target_prior=target)
    with pytest.raises(ValueError, match="target_prior"):
        losses.imbalanced_nnpu_loss(tt(POS_SCORES), torch.tensor(POS_LABELS), 0.3, target_prior=target)


def test_nnpu_rejects_bad_prior_directly():
    with pytest.raises(ValueError):
        losses.nnpu_loss(tt(POS_SCORES), torch.tensor(POS_LABELS), 1.0)
    assert math.isfinite(losses.nnpu_loss(tt(POS_SCORES), torch.tensor(POS_LABELS), 0.99).item())


def test_kd_loss_unlabelled_examples_take_the_soft_term_only():
    # examples 1 and 3 unlabelled (-1): BCE over examples 0 and 2, KL over all four
    y = tt([1.0, -1.0, 1.0, -1.0])
    s, t = np.asarray(S), np.asarray(TT)
    T, alpha = 2.0, 0.3
    q, p = np_sigmoid(s / T), np_sigmoid(t / T)
    kl = (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))).mean()
    bce = -np.log(np_sigmoid(s[[0, 2]])).mean()
    expected = (1 - alpha) * bce + alpha * T * T * kl
    assert losses.kd_loss(tt(S), tt(TT), y, T=T, alpha=alpha).item() == pytest.approx(expected, rel=1e-10)
    # a batch with no labelled example: the soft term alone
    none = losses.kd_loss(tt(S), tt(TT), tt([-1.0] * 4), T=T, alpha=alpha).item()
    assert none == pytest.approx(alpha * T * T * kl, rel=1e-10)
    with pytest.raises(ValueError, match="alpha > 0"):
        losses.kd_loss(tt(S), tt(TT), y, T=T, alpha=0.0)
