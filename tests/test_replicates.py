"""kdlib.report's replicate teachers: which teacher runs repeat the main fine-tune, the KD gain paired on each
teacher's own split, and the gain's variance split between teachers and student seeds."""
import numpy as np
import pandas as pd
import pytest

from kdlib import report, stats

BASE = {"teacher": "minilm", "task": "binary", "T_train": 1.0, "epochs": 2, "seed": 0, "split_seed": 0,
        "transfer_n": "all", "train_subset": None}


def teacher(**change):
    return {"params": {**BASE, **change}}


TEACHERS = {"teacher": teacher(), "teacher_s1": teacher(seed=1, transfer_n=0),
            "teacher_split1": teacher(split_seed=1, transfer_n=0), "teacher_T2": teacher(T_train=2.0),
            "teacher_both": teacher(seed=3, split_seed=2), "teacher_small": teacher(train_subset=500),
            "teacher_again": teacher(transfer_n=0)}


def test_replicate_teachers_by_what_moved():
    got = report.replicate_teachers(TEACHERS, "teacher")
    assert got == {"teacher": "main", "teacher_s1": "teacher seed", "teacher_split1": "split",
                   "teacher_both": "split", "teacher_again": "rerun"}  # T_train or a subset changed: not a replicate


def test_replicate_teachers_needs_the_main_teacher():
    with pytest.raises(ValueError, match="main teacher 'nope'"):
        report.replicate_teachers(TEACHERS, "nope")


def runs_frame(rows):
    return pd.DataFrame(rows, columns=["arch", "hidden", "teacher_run", "seed", "alpha", "accuracy"])


def test_kd_gains_pair_each_kd_run_on_its_teachers_split():
    runs = runs_frame([
        ("gru", 64, "teacher", 0, 0.0, 0.80), ("gru", 64, "teacher", 0, 0.5, 0.83),
        ("gru", 64, "teacher_s1", 0, 0.5, 0.84),                                        # twin: main scratch
        ("gru", 64, "teacher_split1", 0, 0.0, 0.70), ("gru", 64, "teacher_split1", 0, 0.5, 0.75),
        ("gru", 64, "teacher_split1", 1, 0.5, 0.90),                                    # no scratch twin
        ("gru", 64, "teacher_T2", 0, 1.0, 0.99)])                                        # not a replicate
    sources = report.replicate_teachers(TEACHERS, "teacher")
    g = report.kd_gains(runs, sources).set_index("teacher_run")
    assert sorted(g.index) == ["teacher", "teacher_s1", "teacher_split1"]
    assert g.at["teacher", "gain"] == pytest.approx(0.03)
    assert g.at["teacher_s1", "gain"] == pytest.approx(0.04)
    assert g.at["teacher_split1", "gain"] == pytest.approx(0.05)  # its own split's scratch, not the main one
    assert g.at["teacher_split1", "source"] == "split"


def test_gain_sources_balance_seeds_and_split_the_variance():
    rows = []
    shift = {"teacher": 0.0, "teacher_s1": 0.02, "teacher_split1": -0.01}
    noise = [0.001, -0.002, 0.001, 0.05, 0.05]  # seeds 3, 4 only for the main teacher: not used
    for t, d in shift.items():
        for seed in range(5 if t == "teacher" else 3):
            rows += [("cnn", 64, t, seed, 0.0, 0.80), ("cnn", 64, t, seed, 0.5, 0.81 + d + noise[seed])]
    sources = report.replicate_teachers(TEACHERS, "teacher")
    gains = report.kd_gains(runs_frame(rows), sources)
    out = report.gain_sources(gains).set_index("source")
    assert list(out.teachers) == [2, 2] and list(out.seeds) == [3, 3]
    fam = gains[gains.teacher_run.isin(["teacher", "teacher_s1"]) & (gains.seed < 3)]
    vc = stats.variance_components(fam.gain.to_numpy(), fam.teacher_run.to_numpy())
    assert out.at["teacher seed", "between_sd"] == pytest.approx(vc["between_sd"])
    assert out.at["teacher seed", "within_sd"] == pytest.approx(vc["within_sd"])
    assert out.at["teacher seed", "between_sd"] == pytest.approx(np.sqrt(0.02 ** 2 / 2 - vc["within_sd"] ** 2 / 3))
    assert out.at["split", "mean_gain"] == pytest.approx(0.005, abs=1e-6)


def test_gain_sources_with_only_the_main_teacher_has_no_between_part():
    rows = [("gru", 64, "teacher", s, a, 0.8 + a * 0.01 * (s + 1)) for s in range(3) for a in (0.0, 0.5)]
    out = report.gain_sources(report.kd_gains(runs_frame(rows), {"teacher": "main"}))
    assert list(out.teachers) == [1, 1] and np.isnan(out.between_sd).all()


def pu_log(run, model, test_auc, lu_auc, pu_risk):
    return pd.DataFrame({"run": run, "model": model, "split": "test", "meta_epoch": range(1, len(test_auc) + 1),
                         "roc_auc": test_auc, "val_lu_auc": lu_auc, "val_pu_risk": pu_risk})


def test_criterion_tracking_ranks_picks_and_regret():
    log = pd.concat([
        pu_log("r", "teacher", [0.86, 0.80, 0.62], [0.70, 0.66, 0.55], [0.30, 0.35, 0.50]),  # tracks: picks epoch 1
        pu_log("r", "student", [0.70, 0.75, 0.80], [0.60, 0.58, 0.59], [0.4, 0.4, 0.4]),      # picks 1, best 3
        pu_log("r", "student", [0.1, 0.1, 0.1], [0.5, 0.5, 0.5], [0.4, 0.4, 0.4]).assign(split="train")])  # ignored
    lu = report.criterion_tracking(log, "val_lu_auc").set_index("model")
    assert lu.at["teacher", "rho"] == pytest.approx(1.0) and lu.at["teacher", "picked"] == 1 == lu.at["teacher", "best"]
    assert lu.at["teacher", "regret"] == 0
    assert lu.at["student", "picked"] == 1 and lu.at["student", "best"] == 3
    assert lu.at["student", "regret"] == pytest.approx(0.10) and lu.at["student", "rho"] == pytest.approx(-0.5)
    risk = report.criterion_tracking(log, "val_pu_risk").set_index("model")
    assert risk.at["teacher", "rho"] == pytest.approx(1.0)  # lower risk is better: signed so +1 tracks
    assert np.isnan(risk.at["student", "rho"]) and risk.at["student", "picked"] == 1  # a flat criterion: no rank


def test_criterion_tracking_names_the_criteria_it_knows():
    with pytest.raises(ValueError, match="criterion must be one of"):
        report.criterion_tracking(pd.DataFrame(), "val_accuracy")
