"""The IMDB study's controls and calibration: the teacher's hard labels and smoothed labels in the
teacher's slot of the KD loss, label smoothing matched to the teacher's entropy, temperature scaling."""
import json
import math

import numpy as np
import pytest
import torch

from kdlib import data, losses, metrics, train


def test_target_kl_with_soft_targets_is_the_soft_target_loss():
    s, t = torch.randn(40), 3 * torch.randn(40)
    for T in (1.0, 2.0, 8.0):
        assert torch.allclose(losses.target_kl(s, torch.sigmoid(t / T), T), losses.soft_target_loss(s, t, T), atol=1e-6)


def test_target_kl_with_hard_targets_is_bce_and_zero_at_the_target():
    s, y = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(s, y)
    assert torch.allclose(losses.target_kl(s, y), expected)
    p = torch.tensor([0.2, 0.7])
    assert float(losses.target_kl(torch.logit(p), p)) == pytest.approx(0.0, abs=1e-6)


def test_matched_smoothing_gives_the_teachers_entropy():
    # sigmoid(t / 2) = 0.9 for every example: smoothed labels 1 - eps/2 = 0.9, so eps = 0.2
    t = np.full(10, 2 * math.log(9.0))
    assert losses.matched_smoothing(t, T=2.0) == pytest.approx(0.2, abs=1e-9)
    assert losses.matched_smoothing(np.array([0.0]), T=1.0) == 1.0  # a teacher at 0.5: fully smoothed
    t = np.array([-3.0, 0.5, 6.0])
    eps = losses.matched_smoothing(t, T=4.0)
    assert losses.binary_entropy(1 - eps / 2) == pytest.approx(losses.binary_entropy(1 / (1 + np.exp(-t / 4))).mean())
    with pytest.raises(ValueError, match="T must be > 0"):
        losses.matched_smoothing(t, T=0)


def _batch(labels, ids):
    return {"labels": torch.tensor(labels), "ids": torch.tensor(ids)}


def test_kd_objective_fills_the_teachers_slot_with_soft_hard_or_smoothed_targets():
    teacher = data.TeacherLogits(np.array([0, 1, 2]), np.array([3.0, -0.5, 0.2]))
    s = torch.tensor([0.4, -0.3, 1.0])
    batch = _batch([1, 0, 0], [0, 1, 2])
    soft = train.kd_objective(teacher, 2.0, 1.0)(s, batch)
    assert torch.allclose(soft, losses.soft_target_loss(s, torch.tensor([3.0, -0.5, 0.2]), 2.0))
    hard = train.kd_objective(teacher, 1.0, 1.0, "hard")(s, batch)
    assert torch.allclose(hard, torch.nn.functional.binary_cross_entropy_with_logits(s, torch.tensor([1.0, 0.0, 1.0])))
    smoothed = train.kd_objective(teacher, 1.0, 1.0, "smoothed", smoothing=0.2)(s, batch)
    p = torch.tensor([0.9, 0.1, 0.1])
    assert torch.allclose(smoothed, losses.target_kl(s, p))
    # hard targets teach unlabelled examples (self-training on a transfer set); smoothed ones cannot
    unl = _batch([-1, -1, 1], [0, 1, 2])
    assert torch.isfinite(train.kd_objective(teacher, 1.0, 0.5, "hard")(s, unl))
    with pytest.raises(ValueError, match="needs labels"):
        train.kd_objective(teacher, 1.0, 1.0, "smoothed", smoothing=0.2)(s, unl)


def test_controls_at_the_distillation_temperature_read_the_student_at_T_with_T_squared():
    teacher = data.TeacherLogits(np.array([0, 1, 2]), np.array([3.0, -0.5, 0.2]))
    s, batch, T = torch.tensor([0.4, -0.3, 1.0]), _batch([1, 0, 0], [0, 1, 2]), 4.0
    smoothed_T = train.kd_objective(teacher, T, 1.0, "smoothed_T", smoothing=0.2)(s, batch)
    p = torch.tensor([0.9, 0.1, 0.1])
    assert torch.allclose(smoothed_T, losses.target_kl(s, p, T))  # T^2 KL at T, not the T = 1 control's
    assert not torch.allclose(smoothed_T, train.kd_objective(teacher, 1.0, 1.0, "smoothed", smoothing=0.2)(s, batch))
    # "shuffled" is the soft loss on whatever logits it is given (shuffled beforehand)
    shuffled = train.kd_objective(teacher, T, 0.5, "shuffled")(s, batch)
    assert torch.equal(shuffled, train.kd_objective(teacher, T, 0.5, "soft")(s, batch))


def test_shuffled_within_class_keeps_each_class_targets_and_moves_them_between_examples():
    ids = np.arange(10, 30)
    labels = np.array([0, 1] * 10)
    teacher = data.TeacherLogits(ids, np.linspace(-5, 5, 20))
    out = train.shuffled_within_class(teacher, ids, labels, seed=0)
    z, moved = teacher[ids].numpy(), out[ids].numpy()
    for c in (0, 1):  # the same targets in each class, in another order
        assert sorted(moved[labels == c]) == sorted(z[labels == c])
    assert (moved != z).mean() > 0.5
    assert np.array_equal(moved, train.shuffled_within_class(teacher, ids, labels, seed=0)[ids].numpy())
    assert not np.array_equal(moved, train.shuffled_within_class(teacher, ids, labels, seed=1)[ids].numpy())
    k_class = data.TeacherLogits(ids, np.arange(60.0).reshape(20, 3))  # K-class rows move whole
    rows = train.shuffled_within_class(k_class, ids, labels, seed=0)[ids].numpy()
    assert sorted(map(tuple, rows)) == sorted(map(tuple, k_class[ids].numpy()))
    with pytest.raises(ValueError, match="unlabelled"):
        train.shuffled_within_class(teacher, ids, np.where(labels == 0, -1, 1), seed=0)


@pytest.mark.parametrize("kwargs,message", [
    ({"targets": "argmax"}, "targets must be one of"),
    ({"targets": "hard", "T": 2.0}, "T must be 1"),
    ({"targets": "soft", "smoothing": 0.1}, "only with targets 'smoothed'"),
    ({"targets": "smoothed", "T": 4.0, "smoothing": 0.1}, "T must be 1"),
    ({"targets": "smoothed", "smoothing": 1.5}, "smoothing must be in"),
])
def test_kd_objective_rejects_bad_targets(kwargs, message):
    teacher = data.TeacherLogits(np.array([0]), np.array([1.0]))
    T = kwargs.pop("T", 1.0)
    with pytest.raises(ValueError, match=message):
        train.kd_objective(teacher, T, 0.5, **kwargs)


def test_fit_temperature_recovers_an_overconfident_scale():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20000)
    true_logit = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    T = metrics.fit_temperature(3 * true_logit, y)
    assert T == pytest.approx(3.0, rel=0.05)
    raw, scaled = metrics.calibration(y, 3 * true_logit), metrics.calibration(y, 3 * true_logit, T)
    assert scaled["ece"] < raw["ece"] and scaled["log_loss"] < raw["log_loss"]
    assert sum(scaled["bins"]["count"]) == len(y)
    assert len(scaled["bins"]["count"]) == len(scaled["bins"]["predicted"]) == len(scaled["bins"]["observed"])
    with pytest.raises(ValueError, match="labels in 0..K-1"):
        metrics.fit_temperature([1.0, 2.0], [0, 2])


def test_choose_picks_the_best_mean_setting_not_the_best_single_run(tmp_path):
    """(T, alpha) = (2, 0.5) has the single best run, (4, 1) the best mean over its runs."""
    import json

    papermill = pytest.importorskip("papermill")
    jupytext = pytest.importorskip("jupytext")
    from kdlib import paths

    runs = []
    for i, (T, alpha, score) in enumerate([(2, 0.5, 0.80), (2, 0.5, 0.70), (4, 1, 0.76), (4, 1, 0.77)]):
        f = tmp_path / f"run{i}.json"
        f.write_text(json.dumps({"params": {"T": T, "alpha": alpha, "seed": i}, "best_epoch": 1,
                                 "history": [{"epoch": 1, "val_accuracy": score}]}))
        runs.append(str(f))
    nb = tmp_path / "choose.ipynb"
    jupytext.write(jupytext.read(paths.NOTEBOOKS / "choose.py"), nb)
    out = tmp_path / "choice.json"
    papermill.execute_notebook(str(nb), str(tmp_path / "run.ipynb"), cwd=str(tmp_path), progress_bar=False,
                               parameters={"candidates": runs, "keys": ["T", "alpha"], "out": str(out)})
    result = json.loads(out.read_text())
    assert result["choice"] == {"T": 4, "alpha": 1}
    assert [(g["n"], round(g["mean"], 3)) for g in result["groups"]] == [(2, 0.75), (2, 0.765)]


def test_choice_file_reads_the_choice_and_names_the_parameter_when_it_cannot(tmp_path):
    from kdlib import checks

    good = tmp_path / "kd_gru.json"
    good.write_text(json.dumps({"choice": {"T": 4.0, "alpha": 0.5, "lr": 0.002}, "by": "val"}))
    assert checks.choice_file("choices", str(good)) == {"T": 4.0, "alpha": 0.5, "lr": 0.002}
    assert checks.choice_file("choices", good) == {"T": 4.0, "alpha": 0.5, "lr": 0.002}  # a Path, as reports pass it
    assert checks.choice_file("choices", "") == {}
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"choice": {"T": 2.0, "hidden": 64}}))
    with pytest.raises(checks.ParameterError, match=r"choices must be a choice file setting only lr, T, alpha.*\['hidden'\]"):
        checks.choice_file("choices", str(other))
    assert checks.choice_file("choices", str(other), allowed=None) == {"T": 2.0, "hidden": 64}
    (tmp_path / "plain.json").write_text("[1, 2]")
    for bad, message in ((str(tmp_path / "missing.json"), "an existing choice file"), (str(tmp_path / "plain.json"), '"choice" object'),
                         (5, "a string")):
        with pytest.raises(checks.ParameterError, match=message):
            checks.choice_file("kd_choice", bad)
