"""Fusing several teachers (kdlib.fusion): hand values, the equivalence of the mean per-teacher KD
loss and KD to the mean probability, stacking fitted on validation only, and the mimic-all student."""
import numpy as np
import pytest
import torch
from scipy.special import expit

from kdlib import fusion, losses, models

Z = np.array([[2.0, -1.0, 0.5, -3.0],   # teacher 1
              [1.0, 1.0, -0.5, -1.0],   # teacher 2
              [-0.5, -2.0, 0.2, 4.0]])  # teacher 3


def test_mean_logits_and_mean_probs_hand_values():
    np.testing.assert_allclose(fusion.mean_logits(Z), [2.5 / 3, -2 / 3, 0.2 / 3, 0.0])
    for T in (1.0, 2.0, 4.0):
        z = fusion.mean_probs(Z, T)
        np.testing.assert_allclose(expit(z / T), expit(Z / T).mean(0), rtol=1e-12)
    one = fusion.mean_probs(Z[:1], 3.0)  # one teacher: its own logit
    np.testing.assert_allclose(one, Z[0], rtol=1e-10)


def test_majority_vote_with_a_tie_broken_by_the_mean_probability():
    np.testing.assert_array_equal(fusion.majority_vote(Z), [1, 0, 1, 0])  # votes 2/3, 1/3, 2/3, 1/3
    two = np.array([[1.0, -1.0], [-3.0, 4.0]])  # a tie in both columns
    np.testing.assert_array_equal(fusion.majority_vote(two), [0, 1])  # mean probabilities 0.39, 0.63
    with pytest.raises(ValueError, match="teachers, examples"):
        fusion.majority_vote([1.0, 2.0])


def test_stacking_is_fitted_on_validation_and_weighs_the_informative_teacher():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good = (2 * y - 1) * 2.0 + rng.normal(0, 1, 2000)
    noise = rng.normal(0, 3, 2000)
    stack = fusion.Stacking(np.stack([good, noise]), y)
    assert stack.weights[0] > 5 * abs(stack.weights[1])
    fused = stack.logits(np.stack([good, noise]))
    assert fused.shape == (2000,) and np.mean((fused > 0) == y) > 0.9
    with pytest.raises(ValueError, match="both classes"):
        fusion.Stacking(np.stack([good, noise]), np.zeros(2000))


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (2.0, 1.0), (4.0, 0.3)])
def test_mean_of_per_teacher_losses_has_the_gradient_of_kd_to_the_mean_probability(T, alpha):
    g = torch.Generator().manual_seed(0)
    t = torch.randn(32, 3, generator=g, dtype=torch.float64) * 2
    y = (torch.rand(32, generator=g) < 0.5).double()
    s1 = (torch.randn(32, generator=g, dtype=torch.float64) * 2).requires_grad_()
    s2 = s1.detach().clone().requires_grad_()
    mean_loss = fusion.per_teacher_kd_loss(s1, t, y, T=T, alpha=alpha)
    fused = torch.as_tensor(fusion.mean_probs(t.T.numpy(), T))
    to_mean = losses.kd_loss(s2, fused, y, T=T, alpha=alpha)
    mean_loss.backward()
    to_mean.backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-9, atol=1e-12)
    # the values differ by alpha T^2 (the teachers' mean entropy - the entropy of their mean), >= 0
    p = torch.sigmoid(t / T)
    h = lambda q: -(q * q.log() + (1 - q) * (1 - q).log())  # noqa: E731
    gap = alpha * T * T * (h(p.mean(1)) - h(p).mean(1)).mean()
    assert mean_loss.item() == pytest.approx(to_mean.item() + gap.item(), rel=1e-9)
    assert gap.item() >= 0


@pytest.mark.parametrize("arch", models.ARCHS)
def test_mimic_all_trains_one_head_per_teacher_and_predicts_with_their_mean(arch):
    student = fusion.MimicAll(models.build_student(arch, 16, 30, seed=1), 3, seed=1)
    ids = torch.randint(1, 30, (5, 9))
    mask = torch.ones_like(ids)
    heads = student.train()(ids, mask)
    assert heads.shape == (5, 3)
    student.eval()
    torch.testing.assert_close(student(ids, mask), student.student(ids, mask).mean(1))
    t = torch.randn(5, 3)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    loss = fusion.mimic_all_loss(heads, t, y, T=2.0, alpha=0.5)
    want = 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(heads.mean(1), y) + 0.5 * torch.stack(
        [losses.soft_target_loss(heads[:, m], t[:, m], 2.0) for m in range(3)]).mean()
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert student.student.head.weight.grad is not None
    with pytest.raises(ValueError, match="one-logit"):
        fusion.MimicAll(student.student, 2, seed=0)
    with pytest.raises(ValueError, match="must both be"):
        fusion.mimic_all_loss(heads, t[:, :2], y)


def test_fuse_applies_one_fusion_to_every_split_and_fits_stacking_on_validation_only():
    rng = np.random.default_rng(1)
    y_val = rng.integers(0, 2, 400)
    val = np.stack([(2 * y_val - 1) * 2.0 + rng.normal(0, 1, 400), rng.normal(0, 1, 400), rng.normal(0, 1, 400)])
    logits = {"train": Z, "val": val, "test": Z[:, :2]}
    out = fusion.fuse("mean_probs", logits, T=2.0)
    np.testing.assert_allclose(out["train"], fusion.mean_probs(Z, 2.0))
    np.testing.assert_allclose(fusion.fuse("mean_logits", logits)["test"], Z[:, :2].mean(0))
    np.testing.assert_array_equal(fusion.fuse("vote", logits)["train"], [1, -1, 1, -1])
    stacked = fusion.fuse("stacking", logits, y_val)
    np.testing.assert_allclose(stacked["train"], fusion.Stacking(val, y_val).logits(Z))
    np.testing.assert_allclose(stacked["val"], fusion.stacking_out_of_fold(val, y_val))  # not the in-sample fit
    assert not np.allclose(stacked["val"], fusion.Stacking(val, y_val).logits(val))
    with pytest.raises(ValueError, match="val_labels"):
        fusion.fuse("stacking", logits)
    with pytest.raises(ValueError, match="method must be one of"):
        fusion.fuse("median", logits)


def test_disagreement_and_error_correlation_hand_values():
    z = np.array([[1.0, 1.0, -1.0, -1.0],
                  [1.0, -1.0, -1.0, 1.0],
                  [1.0, 1.0, -1.0, -1.0]])
    y = np.array([1, 1, 0, 1])
    d = fusion.disagreement(z)
    np.testing.assert_allclose(d, [[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]])
    # errors: teacher 1 and 3 wrong on the 4th only, teacher 2 on the 2nd only
    c = fusion.error_correlation(z, y)
    np.testing.assert_allclose(c, [[1, -1 / 3, 1], [-1 / 3, 1, -1 / 3], [1, -1 / 3, 1]])
    assert np.isnan(fusion.error_correlation(z, [1, 1, 0, 0])[0, 1])  # teacher 1 makes no error
    np.testing.assert_array_equal(fusion.by_validation(z, y), [0, 1, 2])  # all 3/4: declared order
    np.testing.assert_array_equal(fusion.by_validation(z, [1, 0, 0, 1]), [1, 0, 2])  # 2/4, 4/4, 2/4


def test_stacking_out_of_fold_scores_each_fold_with_a_fit_that_never_saw_it():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    val = np.stack([(2 * y - 1) * 1.5 + rng.normal(0, 1, 300), rng.normal(0, 1, 300)])
    oof = fusion.stacking_out_of_fold(val, y, folds=3, seed=5)
    for fit_idx, score_idx in StratifiedKFold(3, shuffle=True, random_state=5).split(val.T, y):
        model = LogisticRegression().fit(val[:, fit_idx].T, y[fit_idx])
        np.testing.assert_allclose(oof[score_idx], model.decision_function(val[:, score_idx].T))
    assert np.mean((oof > 0) == y) > 0.8
    with pytest.raises(ValueError, match="at least 5 of each class"):
        fusion.stacking_out_of_fold(val[:, :6], np.array([0, 0, 0, 1, 1, 1]))


def test_temperatures_put_teachers_of_different_scales_on_one_calibrated_scale():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 4000)
    base = (2 * y - 1) * 1.0 + rng.normal(0, 1.5, 4000)  # a calibrated-ish score
    temps = fusion.temperatures(np.stack([base, 10 * base]), y)
    assert temps[1] == pytest.approx(10 * temps[0], rel=1e-3)  # the overconfident teacher is scaled down ten times
    np.testing.assert_allclose(base / temps[0], 10 * base / temps[1], rtol=1e-3)


def test_temperatures_relative_to_a_reference_leave_that_teacher_unchanged():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 4000)
    base = (2 * y - 1) * 1.0 + rng.normal(0, 1.5, 4000)
    Z = np.stack([3 * base, base, 10 * base])
    absolute = fusion.temperatures(Z, y)
    rel = fusion.temperatures(Z, y, reference=1)
    assert rel[1] == 1.0  # the reference keeps its own scale: a T chosen for it means the same
    np.testing.assert_allclose(rel, absolute / absolute[1])
    np.testing.assert_allclose(Z[0] / rel[0], Z[1], rtol=1e-3)  # the others are brought to the reference's scale
    np.testing.assert_allclose(Z[2] / rel[2], Z[1], rtol=1e-3)


def test_logit_hashes_change_with_a_teachers_logits_and_only_its_own(tmp_path, monkeypatch):
    from kdlib import data, paths

    monkeypatch.setattr(paths, "cache_dir", lambda: tmp_path)
    ids = {"train": np.array([3, 1, 2]), "val": np.array([7, 5])}

    def teacher(name, train, val):
        logits = {}
        for s, z in (("train", train), ("val", val)):
            data.TeacherLogits(ids[s], np.array(z, dtype=np.float32)).save(tmp_path / f"{name}-{s}.npz", checkpoint="c",
                                                                           data="d", T_train=1.0)
            logits[s] = {"cache_path": f"{name}-{s}.npz"}
        return {"name": name, "logits": logits}

    a, b = teacher("a", [1, 2, 3], [4, 5]), teacher("b", [1, 2, 3], [4, 5])
    before = fusion.logit_hashes([a, b], ids)
    assert before["a"] == before["b"] and set(before) == {"a", "b"}  # a hash of the logits, not of the name
    assert fusion.logit_hashes([a, b], ids) == before  # the same files, the same hashes
    b = teacher("b", [1, 2, -3], [4, 5])  # b's train logits change (e.g. out of fold now), its checkpoint does not
    after = fusion.logit_hashes([a, b], ids)
    assert after["a"] == before["a"] and after["b"] != before["b"]


def _pool_run(name, n, data_hash="aaa"):
    logits = {"train": {}, **({"transfer": {"n": n, "data_hash": data_hash}} if n is not None else {})}
    return {"name": name, "logits": logits}


def test_shared_pool_is_the_one_pool_every_teacher_labelled():
    assert fusion.shared_pool([_pool_run("a", 100), _pool_run("b", 100)]) == (100, "aaa")


@pytest.mark.parametrize("runs, match", [
    ([_pool_run("a", 100), _pool_run("b", None)], r"teachers \['b'\] cached no logits for the unlabelled pool"),
    ([_pool_run("a", 100), _pool_run("b", 0)], r"teachers \['b'\] cached no logits"),
    ([_pool_run("a", 100), _pool_run("b", 50)], "labelled different pools"),
    ([_pool_run("a", 100), _pool_run("b", 100, "bbb")], "labelled different pools")])
def test_shared_pool_refuses_teachers_without_one_pool(runs, match):
    with pytest.raises(ValueError, match=match):
        fusion.shared_pool(runs)
