"""kdlib.report on a small synthetic set of run records (no training): rows, pairing, families, numbers, README blocks."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from kdlib import report


def record(arch="gru", hidden=16, seed=0, alpha=0.0, acc=0.8, init="i0", **extra):
    return {"name": f"{arch}_h{hidden}_{'kd' if alpha else 'scratch'}_s{seed}", "best_epoch": 2,
            "params": {"arch": arch, "hidden": hidden, "seed": seed, "T": 4.0, "alpha": alpha, "lr": 1e-3,
                       "teacher_checkpoint": "abc", "epochs": 30, "patience": 3, **extra},
            "test": {"accuracy": acc, "roc_auc": acc + 0.05, "n": 100},
            "history": [{"epoch": 2, "val_accuracy": acc - 0.01}],
            "params_count": {"other": 10, "total": 20}, "init_hash": init,
            "provenance": {"kdlib_code": "c0de", "notebook": {"name": "student", "hash": "n0"}}}


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for arch in ("cnn", "gru"):
        for hidden in (16, 32):
            for seed in range(4):
                base = 0.8 + rng.normal(0, 0.01)
                for alpha, gain in ((0.0, 0.0), (0.5, 0.01 + rng.normal(0, 0.005))):
                    f = tmp_path / f"{arch}{hidden}_{alpha}_{seed}" / "metrics.json"
                    f.parent.mkdir()
                    f.write_text(json.dumps(record(arch, hidden, seed, alpha, base + gain, init=f"{arch}{hidden}s{seed}")))
                    files.append(f)
    return report.load_runs(sorted(files), metrics=("accuracy", "roc_auc"))


def test_rows_read_the_recorded_parameters_and_the_kept_epochs_validation(runs):
    assert len(runs) == 32 and set(runs.arch) == {"cnn", "gru"}
    assert runs.val_accuracy.round(6).equals((runs.accuracy - 0.01).round(6))
    assert (runs.code_version == "kdlib c0de, student.py n0").all()
    assert runs.transfer.eq(0).all() and runs.budget.eq("epochs 30, patience 3").all()
    assert list(report.load_runs([], columns=["name"]).columns) == []


def test_paired_row_matches_scipy_and_the_shared_seeds(runs):
    a = runs[(runs.alpha > 0) & (runs.arch == "gru") & (runs.hidden == 16)]
    b = runs[(runs.alpha == 0) & (runs.arch == "gru") & (runs.hidden == 16)].iloc[1:]  # seed 0 has no twin
    row = report.paired_row(a, b, "accuracy", arch="gru")
    assert row["seeds"] == [1, 2, 3] and row["n"] == 3 and row["arch"] == "gru"
    d = a.set_index("seed").accuracy.loc[[1, 2, 3]].to_numpy() - b.set_index("seed").accuracy.to_numpy()
    t = sps.ttest_rel(a.set_index("seed").accuracy.loc[[1, 2, 3]], b.set_index("seed").accuracy)
    lo, hi = sps.t.interval(0.95, len(d) - 1, d.mean(), sps.sem(d))
    assert row["p"] == pytest.approx(t.pvalue) and row["diff"] == pytest.approx(d.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))


def test_a_pair_of_different_initial_weights_is_an_error(runs):
    a = runs[(runs.alpha > 0) & (runs.arch == "gru") & (runs.hidden == 16)].copy()
    b = runs[(runs.alpha == 0) & (runs.arch == "gru") & (runs.hidden == 16)]
    a.loc[a.seed == 2, "init_hash"] = "other"
    with pytest.raises(ValueError, match="initial weights"):
        report.matched(a, b, "accuracy")
    assert len(report.matched(a, b, "accuracy", same_init=False)[0]) == 4  # told the networks differ
    a.loc[a.seed == 2, "init_hash"] = None  # unrecorded: no check
    assert len(report.matched(a, b, "accuracy")[0]) == 4


def test_holm_is_statsmodels_within_each_family_and_names_it(runs):
    rows = pd.DataFrame([report.paired_row(runs[(runs.alpha > 0) & (runs.arch == a) & (runs.hidden == h)],
                                           runs[(runs.alpha == 0) & (runs.arch == a) & (runs.hidden == h)], m, arch=a, hidden=h)
                         for a in ("cnn", "gru") for h in (16, 32) for m in ("accuracy", "roc_auc")])
    out = report.holm(rows, "imdb-kd-vs-scratch")
    for m, g in out.groupby("metric"):
        assert np.allclose(g.p_holm, multipletests(g.p, method="holm")[1])
    assert (out.p_holm >= out.p).all()
    with_nan = rows.assign(p=[np.nan] + list(rows.p[1:]))
    assert np.isnan(report.holm(with_nan, "imdb-kd-vs-scratch").p_holm.iloc[0])
    assert report.holm(rows.iloc[:0], "imdb-kd-vs-scratch").empty
    with pytest.raises(KeyError):
        report.holm(rows, "no-such-family")
    assert "imdb-kd-vs-scratch" in report.FAMILIES["imdb-kd-vs-scratch"].text()


def test_pooled_takes_the_cells_as_the_unit(runs):
    d = pd.DataFrame({"d": [0.01, 0.02, 0.03, 0.02, 0.05, 0.04], "cell": ["a", "a", "b", "b", "c", "c"]})
    out = report.pooled([("all", d), ("none", d.iloc[:0])])
    assert list(out.cells) == ["all"]
    means = [0.015, 0.025, 0.045]
    assert out["mean"].iloc[0] == pytest.approx(np.mean(means))
    assert out.p.iloc[0] == pytest.approx(sps.ttest_1samp(means, 0).pvalue)


def test_leave_out_keeps_the_first_reason(runs):
    lo = report.LeaveOut(runs)
    lo(runs.hidden == 32, "small", "hidden 32")
    lo(runs.arch == "cnn", "cnn", runs.name.map(lambda n: f"cnn run {n}"))
    assert (runs[runs.hidden == 32].left_out_as == "small").all()
    assert (runs[(runs.hidden == 16) & (runs.arch == "cnn")].left_out.str.startswith("cnn run ")).all()
    assert len(lo.kept()) == 8 and "left_out" not in lo.kept() and len(lo.left()) == 24


@pytest.mark.parametrize("x, f, want", [(0.12345, ".4f", "0.1235"), (np.nan, ".4f", "–"), (None, ".4f", "–"),
                                        (np.inf, ".2f", "–"), (-0.00001, "+.4f", "-0.0000")])
def test_num(x, f, want):
    assert report.num(x, f) == want


def test_ci_p_and_words():
    assert report.ci(0.004, 0.001, 0.007) == "+0.0040 [+0.0010, +0.0070]"
    assert report.ci(0.004, np.nan, np.nan) == "+0.0040"
    assert report.ci(np.nan, np.nan, np.nan) == "–"
    assert [report.pval(p) for p in (0.0009, 0.001, 0.0344, 1.0, np.nan, None)] == ["< 0.001", "0.001", "0.034", "1.000", "–", "–"]
    assert report.p_is(1e-5) == "p < 0.001" and report.p_is(0.2) == "p = 0.200" and report.p_is(np.nan) == "p = –"
    assert report.pm([1.0, 2.0]) == "1.5000 ± 0.7071" and report.pm([1.0]) == "1.0000" and report.pm([]) == "–"
    assert report.nw(1, "cell") == "1 cell" and report.nw(0, "cell") == "0 cells"
    assert report.n_text([3, 3]) == "n = 3" and report.n_text([3, 5]) == "n = 3–5" and report.n_text([]) == "n = –"


def test_md_keeps_text_and_says_none_when_empty():
    frame = pd.DataFrame({"a": ["0.10", "x"], "b": ["1e3", "–"]})
    text = report.md(frame)
    assert "0.10" in text and "1e3" in text and report.md(frame.iloc[:0]) == "(none)"


def test_readme_block_is_replaced_only_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    text = ("intro <!-- other:start x -->keep<!-- other:end -->\n<!-- pu:start (written by old) -->\nold\n"
            "<!-- pu:end -->\ntail\n")
    readme.write_text(text)
    assert report.write_block(readme, "pu", "new $1 \\1 text", "notebooks/pu_report.py") is True
    new = readme.read_text()
    assert new.startswith("intro <!-- other:start x -->keep<!-- other:end -->\n") and new.endswith("\ntail\n")
    assert ("<!-- pu:start (written by notebooks/pu_report.py; do not edit by hand) -->\nnew $1 \\1 text\n"
            "<!-- pu:end -->") in new and "old" not in new
    assert report.write_block(readme, "pu", "new $1 \\1 text", "notebooks/pu_report.py") is False
    assert report.write_block(readme, "missing", "x", "w") is None and readme.read_text() == new
    assert report.write_block(tmp_path / "none.md", "pu", "x", "w") is None


def test_every_family_is_named_by_a_report_and_every_named_family_is_defined():
    from kdlib import paths
    import re
    text = "\n".join(p.read_text() for p in (paths.ROOT / "notebooks").glob("*report.py"))
    named = set(re.findall(r'FAMILIES\["([\w-]+)"\]', text))
    assert named <= set(report.FAMILIES), named - set(report.FAMILIES)
    unused = {n for n in report.FAMILIES if f'"{n}"' not in text}
    assert not unused, f"families no report uses: {unused}"


def test_a_binary_cell_has_one_p_holm_on_both_pages():
    """results/rating.md's two-class cells carry study 1's family (imdb-kd-vs-scratch): the committed
    tables of both reports agree cell by cell."""
    from kdlib import paths
    tables = paths.ROOT / "results" / "tables"
    rating, study1 = pd.read_csv(tables / "rating.csv"), pd.read_csv(tables / "students.csv")
    both = rating[rating.task == "binary"].merge(study1, on=["arch", "hidden"])
    assert len(both) and np.allclose(both.p_holm, both.acc_p_holm, rtol=0, atol=1e-12)
    assert np.allclose(both["diff"], both.acc_diff, rtol=0, atol=1e-12)


def test_study1_p_holm_reads_kd_from_students_and_the_pool_from_transfer(tmp_path):
    pd.DataFrame({"arch": ["gru", "gru"], "hidden": [64, 128], "acc_p": [0.01, 0.02], "acc_p_holm": [0.05, 0.06]}
                 ).to_csv(tmp_path / "students.csv", index=False)
    pd.DataFrame({"arch": ["gru", "gru", "gru"], "hidden": [64, 64, 64], "a": ["kd_transfer", "kd_transfer", "self_training"],
                  "b": ["scratch"] * 3, "metric": ["accuracy", "roc_auc", "accuracy"], "p": [0.03, 0.04, 0.05],
                  "p_holm": [0.07, 0.08, 0.09]}).to_csv(tmp_path / "transfer.csv", index=False)
    assert report.study1_p_holm(tmp_path, 64) == {("gru", "kd"): (0.01, 0.05), ("gru", "kd_pool"): (0.03, 0.07)}


def test_a_whole_split_cell_has_one_p_holm_on_the_budget_and_study_1_pages():
    """results/budget.md's n = the whole split rows are study 1's cells: the committed tables agree."""
    from kdlib import paths
    tables = paths.ROOT / "results" / "tables"
    budget = pd.read_csv(tables / "budget.csv")
    whole = budget[budget.n == budget.n.max()]
    study1 = report.study1_p_holm(tables, 64)
    assert len(whole) == 2
    for r in whole.itertuples():
        for arm in ("kd", "kd_pool"):
            assert np.isclose(getattr(r, f"{arm}_p"), study1[(r.arch, arm)][0], rtol=1e-9, atol=0)
            assert getattr(r, f"{arm}_p_holm") == study1[(r.arch, arm)][1]


def test_crossings_of_a_monotone_curve_first_equals_last():
    c = report.crossings([100, 1000, 10000], [0.80, 0.90, 0.95], 0.85)
    assert c["first"] == pytest.approx(np.sqrt(100 * 1000)) and c["last"] == pytest.approx(c["first"])  # halfway in log x
    assert c["monotone"] and c["dips"] == [] and c["around"] == (100, 1000)
    assert report.crossings([100, 1000], [0.80, 0.90], 0.85, log_x=False)["first"] == pytest.approx(550)
    c = report.crossings([100, 1000], [0.86, 0.90], 0.85)  # the first point already reaches it
    assert c["first"] == 100 and c["last"] == 100 and c["around"] == (100, 100)
    assert report.crossings([100, 1000], [0.85, 0.90], 0.85)["first"] == 100  # reaching is >=
    c = report.crossings([100, 1000], [0.5, 0.84], 0.85)
    assert c["first"] is None and c["last"] is None and c["around"] is None and c["dips"] == []


def test_crossings_of_a_curve_that_dips_back_under_the_level():
    x, y = [100, 250, 500, 1000, 2500], [0.80, 0.86, 0.84, 0.83, 0.87]
    c = report.crossings(x, y, 0.85)
    assert c["first"] == pytest.approx(np.exp(np.log(100) + (0.05 / 0.06) * np.log(2.5)))
    assert c["dips"] == [500, 1000] and not c["monotone"] and c["around"] == (100, 250)
    assert c["last"] == pytest.approx(np.exp(np.log(1000) + 0.5 * np.log(2.5)))  # 0.83 -> 0.87: halfway
    assert c["first"] < 250 < c["last"]
    # ends below the level: never reached for good
    c = report.crossings(x[:4], y[:4], 0.85)
    assert c["first"] is not None and c["last"] is None and c["dips"] == [500, 1000]
    # a decrease that stays above the level is still not monotone, without dips
    c = report.crossings([1, 2, 3], [0.86, 0.90, 0.88], 0.85)
    assert not c["monotone"] and c["dips"] == [] and c["first"] == c["last"] == 1


def test_crossings_sorts_drops_missing_points_and_refuses_bad_x():
    c = report.crossings([1000, 100, 500], [0.90, 0.80, np.nan], 0.85)  # unsorted, a missing point
    assert c["first"] == pytest.approx(np.sqrt(100 * 1000)) and c["monotone"]
    with pytest.raises(ValueError, match="same x"):
        report.crossings([100, 100], [0.8, 0.9], 0.85)
    with pytest.raises(ValueError, match="positive"):
        report.crossings([0, 100], [0.8, 0.9], 0.85)
    assert report.crossings([0, 100], [0.8, 0.9], 0.85, log_x=False)["first"] == pytest.approx(50)


def test_labelled_splits_reads_the_recorded_hashes_and_validation_size(tmp_path):
    f = tmp_path / "metrics.json"
    r = record()
    r["provenance"]["inputs"], r["val"] = {"train": "t1", "val": "v1"}, {"n": 64, "accuracy": 0.7}
    f.write_text(json.dumps(r))
    assert report.labelled_splits(f) == {"train_hash": "t1", "val_hash": "v1", "val_n": 64}
    f.write_text(json.dumps(record()))  # an older record: no inputs, no val metrics
    got = report.labelled_splits(f)
    assert got["train_hash"] is None and got["val_hash"] is None and np.isnan(got["val_n"])


def test_verdict_never_says_no_difference_without_an_equivalence_test():
    assert report.verdict(0.01, 0.4, 0.004) == "equivalent within ±0.004"
    assert report.verdict(0.4, 0.01, 0.004) == "different"
    assert report.verdict(0.01, 0.01, 0.004) == "different, but within ±0.004"
    assert report.verdict(0.2, 0.3, 0.004) == "undecided at this n"
    assert report.verdict(np.nan, 0.3, 0.01) == "undecided at this n"
    assert report.verdict(0.05, 0.05, 0.01) == "undecided at this n"  # p < alpha, not ≤
    assert not any("no difference" in report.verdict(a, b, 0.01) for a in (0.01, 0.5) for b in (0.01, 0.5))


def test_log_loss_from_stored_scores_matches_sklearn_by_id(tmp_path):
    from sklearn.metrics import log_loss
    from scipy.special import expit, softmax
    rng = np.random.default_rng(0)
    n, k = 50, 8
    ids = rng.permutation(np.arange(100, 100 + n)).astype(np.int32)
    y = rng.integers(0, k, n)
    np.savez(tmp_path / "teacher.npz", ids=ids, logits=rng.normal(size=(n, k)).astype(np.float16), labels=y.astype(np.int8))
    labels = report.stored_test_labels(tmp_path / "teacher.npz")
    assert labels.loc[ids[3]] == y[3] and len(labels) == n
    # a student's scores in another order: the labels follow the ids
    order = rng.permutation(n)
    z = rng.normal(size=(n, k)).astype(np.float16)
    np.savez(tmp_path / "student.npz", ids=ids[order], logits=z)
    want = log_loss(y[order], softmax(z.astype(np.float64), axis=1), labels=list(range(k)))
    assert report.scores_log_loss(tmp_path / "student.npz", labels) == pytest.approx(want)
    wrong = log_loss(y, softmax(z.astype(np.float64), axis=1), labels=list(range(k)))
    assert abs(want - wrong) > 1e-3  # ignoring the ids would give another number
    # single logits: P(positive) = sigmoid
    y2 = rng.integers(0, 2, n)
    np.savez(tmp_path / "t2.npz", ids=ids, logits=np.zeros(n, np.float16), labels=y2.astype(np.int8))
    z2 = rng.normal(size=n).astype(np.float16)
    np.savez(tmp_path / "s2.npz", ids=ids, logits=z2)
    assert report.scores_log_loss(tmp_path / "s2.npz", report.stored_test_labels(tmp_path / "t2.npz")) == pytest.approx(
        log_loss(y2, expit(z2.astype(np.float64)), labels=[0, 1]))
    np.savez(tmp_path / "other.npz", ids=ids + 1000, logits=z)
    with pytest.raises(ValueError, match="without a label"):
        report.scores_log_loss(tmp_path / "other.npz", labels)
    with pytest.raises(ValueError, match="no labels"):
        report.stored_test_labels(tmp_path / "student.npz")


def test_the_equivalence_family_splits_the_pooled_test_from_the_cells():
    f = pd.DataFrame({"level": ["pooled"] + ["cell"] * 3, "metric": "accuracy", "p": [0.03, 0.01, 0.02, 0.04]})
    out = report.holm(f, "rating-equivalence")
    assert out.p_holm.iloc[0] == pytest.approx(0.03)  # a family of one
    assert list(out.p_holm.iloc[1:]) == pytest.approx(list(multipletests([0.01, 0.02, 0.04], method="holm")[1]))


def test_intervals_cover_names_what_varies_and_what_is_held_fixed():
    line = report.intervals_cover("student seeds", "one teacher fine-tune and one split")
    assert "varies student seeds only" in line and "conditional on one teacher fine-tune and one split" in line
    assert "not across CPUs" in line and "../docs/methods.md#what-every-number-stands-on" in line
    with pytest.raises(ValueError, match="unit"):
        report.intervals_cover("", "one teacher")


def _record(name, arch, seed, alpha, acc, auc, epoch, machine=None):
    p = {"arch": arch, "hidden": 64, "seed": seed, "alpha": alpha, "T": 4, "targets": "soft", "threads": 1}
    prov = {"machine": machine} if machine else {}
    return {"name": name, "params": p, "test": {"accuracy": acc, "roc_auc": auc}, "best_epoch": epoch, "provenance": prov}


def test_rerun_spread_names_each_change_and_the_paired_difference_it_moves():
    here = {"cpu": "AMD EPYC", "cpu_capability": "AVX2"}
    pairs = [(_record("g_s0", "gru", 0, 0.0, 0.85, 0.93, 5), _record("g_s0", "gru", 0, 0.0, 0.86, 0.94, 7, here)),
             (_record("g_kd_s0", "gru", 0, 0.5, 0.87, 0.95, 4), _record("g_kd_s0", "gru", 0, 0.5, 0.87, 0.95, 4, here)),
             (_record("c_s1", "cnn", 1, 0.0, 0.80, 0.90, 3), _record("c_s1", "cnn", 1, 0.0, 0.79, 0.90, 3, here))]
    spread = report.rerun_spread([(a, b) for a, b in pairs])
    assert list(spread.accuracy_change.round(6)) == [0.01, 0.0, -0.01]
    assert list(spread.identical) == [False, True, False]
    assert spread.machine.iloc[0] == "not recorded" and spread.rerun_machine.iloc[0] == "AMD EPYC (AVX2)"
    assert list(spread.best_epoch_rerun) == [7, 4, 3] and list(spread.arm) == ["scratch", "soft", "scratch"]
    moved = report.rerun_pair_changes(spread)
    assert len(moved) == 1 and moved.iloc[0]["diff"] == pytest.approx(0.02) and moved.iloc[0].change == pytest.approx(-0.01)
    other = _record("g_s0", "gru", 0, 0.0, 0.85, 0.93, 5)
    other["params"]["seed"] = 1
    with pytest.raises(ValueError, match="other parameters"):
        report.rerun_spread([(pairs[0][0], other)])


def test_versus_pairs_every_arm_with_the_reference_by_seed_per_cell():
    rows = [{"student": st, "method": m, "seed": sd, "roc_auc": 0.7 + 0.01 * sd + off + (0.003 * sd if m == "b" else 0)}
            for st in ("gru", "cnn") for m, off in (("ref", 0.0), ("a", 0.05), ("b", -0.02)) for sd in range(4)]
    rows += [{"student": "gru", "method": "c", "seed": 9, "roc_auc": 0.5},   # no seed shared with the reference
             {"student": "mlp", "method": "a", "seed": 0, "roc_auc": 0.5}]   # a cell without the reference
    out = report.versus(pd.DataFrame(rows), "method", "ref", ["roc_auc"], by=["student"])
    assert list(zip(out.student, out.method)) == [("gru", "a"), ("gru", "b"), ("gru", "c"), ("cnn", "a"), ("cnn", "b")]
    a = out[(out.student == "gru") & (out.method == "a")].iloc[0]
    assert a["n"] == 4 and a["diff"] == pytest.approx(0.05) and a["wins"] == 4 and a["seeds"] == [0, 1, 2, 3]
    b = out[(out.student == "cnn") & (out.method == "b")].iloc[0]
    d = np.array([-0.02 + 0.003 * sd for sd in range(4)])
    assert b["diff"] == pytest.approx(d.mean()) and b["p"] == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    assert out[out.method == "c"].iloc[0]["n"] == 0 and out.metric.eq("roc_auc").all()
    one = pd.DataFrame(rows).query("student == 'gru'").assign(pr_auc=0.3)
    assert report.versus(one, "method", "ref", ["roc_auc", "pr_auc"]).shape[0] == 6   # no `by`: one cell, two metrics


def test_versus_reference_first_flips_the_sign_and_margins_add_a_tost_of_the_same_pairs():
    rows = [{"mode": m, "seed": sd, "roc_auc": 0.9 + 0.01 * sd + (0.002 * (sd % 2) if m == "off" else 0)}
            for m in ("on", "off") for sd in range(6)]
    runs = pd.DataFrame(rows)
    plain = report.versus(runs, "mode", "on", ["roc_auc"]).iloc[0]   # off − on
    flipped = report.versus(runs, "mode", "on", ["roc_auc"], margins={"roc_auc": 0.01}, reference_first=True).iloc[0]
    assert flipped["mode"] == "off" and flipped["diff"] == pytest.approx(-plain["diff"]) == pytest.approx(-0.001)
    d = np.array([-0.002 * (sd % 2) for sd in range(6)])
    from statsmodels.stats.weightstats import ttost_paired
    assert flipped["tost_p_tost"] == pytest.approx(ttost_paired(d, np.zeros(6), -0.01, 0.01)[0])
    assert flipped["tost_p_tost"] < 0.05 and flipped["tost_margin"] == 0.01
    assert "tost_p_tost" not in plain   # no margin: no TOST


def test_versus_pooled_takes_each_seeds_mean_over_the_settings_as_one_pair():
    # two settings x 5 seeds; the online − offline difference is +0.02 in setting 1 and 0 in setting 2 for every seed
    # but seed 4, which only setting 1 has for the offline arm
    rows = []
    for sd in range(5):
        for setting, gap in ((1, 0.02), (2, 0.0)):
            base = 0.8 + 0.01 * sd + 0.003 * setting
            rows.append({"student": "cnn", "setting": setting, "arm": "online", "seed": sd, "roc_auc": base + gap + 0.001 * sd})
            if not (sd == 4 and setting == 2):
                rows.append({"student": "cnn", "setting": setting, "arm": "offline", "seed": sd, "roc_auc": base})
    out = report.versus_pooled(pd.DataFrame(rows), "arm", "online", ["roc_auc"], over=["setting"], by=["student"],
                               margins={"roc_auc": 0.05}, reference_first=True)
    r = out.iloc[0]
    per_seed = np.array([(0.02 + 0.001 * sd + 0.001 * sd) / 2 for sd in range(4)] + [0.02 + 0.001 * 4])
    assert r["n"] == 5 and r["settings"] == 2 and r["seeds"] == [0, 1, 2, 3, 4] and r["arm"] == "offline"
    assert r["diff"] == pytest.approx(per_seed.mean()) and r["p"] == pytest.approx(sps.ttest_1samp(per_seed, 0).pvalue)
    assert r["tost_ci90_high"] == pytest.approx(sps.ttest_1samp(per_seed, 0).confidence_interval(0.9).high)


# ---- a PU teacher's fixes, and does it still collapse? (issue 55.2) ----------------------------------
def test_teacher_fix_names_only_what_differs_from_the_defaults():
    assert report.teacher_fix({"accumulate": 1, "teacher_weight_decay": 0.0, "teacher_schedule": "constant"}) == ""
    assert report.teacher_fix({}) == ""  # unrecorded: at its default
    assert (report.teacher_fix({"accumulate": 4, "teacher_weight_decay": 0.01, "teacher_schedule": "linear"})
            == "4 batches a step + weight decay 0.01 + linear warm-up and decay of the lr")
    assert report.teacher_fix({"nnpu_beta": 0.1}) == "β=0.1"


def _collapse_inputs():
    # two seeds; "as before" collapses in seed 0 (0.86 -> 0.40), chosen at meta-epoch 1 by the criterion
    teachers = pd.DataFrame([
        {"run": "a0", "setting": "as before", "seed": 0, "teacher_picked": 1, "teacher_criterion": 0.70, "teacher_roc_auc": 0.86},
        {"run": "a1", "setting": "as before", "seed": 1, "teacher_picked": 3, "teacher_criterion": 0.72, "teacher_roc_auc": 0.88},
        {"run": "f0", "setting": "fixed", "seed": 0, "teacher_picked": 3, "teacher_criterion": 0.75, "teacher_roc_auc": 0.90},
        {"run": "f1", "setting": "fixed", "seed": 1, "teacher_picked": 3, "teacher_criterion": 0.76, "teacher_roc_auc": 0.80},
        {"run": "s0", "setting": "supervised", "seed": 0, "teacher_picked": 3, "teacher_criterion": 0.99, "teacher_roc_auc": 0.93},
        {"run": "s1", "setting": "supervised", "seed": 1, "teacher_picked": 2, "teacher_criterion": 0.99, "teacher_roc_auc": 0.92}])
    curves = {"a0": [0.86, 0.70, 0.40], "a1": [0.80, 0.85, 0.88], "f0": [0.85, 0.88, 0.90], "f1": [0.70, 0.75, 0.80],
              "s0": [0.90, 0.92, 0.93], "s1": [0.91, 0.92, 0.90]}
    log = pd.DataFrame([{"run": r, "model": who, "split": split, "meta_epoch": m + 1, "roc_auc": v if who == "teacher" else 0.5}
                        for r, c in curves.items() for m, v in enumerate(c) for who in ("teacher", "student")
                        for split in ("train", "test")])
    return teachers, log


def test_teacher_collapse_reads_each_teacher_against_the_reference_of_its_seed():
    teachers, log = _collapse_inputs()
    out = report.teacher_collapse(teachers, log, "supervised", margin=0.05).set_index("run")
    assert out.loc["a0", "last_roc_auc"] == 0.40 and out.loc["a0", "lowest_roc_auc"] == 0.40
    assert out.loc["s1", "last_roc_auc"] == 0.90 and out.loc["s1", "lowest_roc_auc"] == 0.90
    assert out.loc["a0", "reference_roc_auc"] == 0.93 and out.loc["a1", "reference_roc_auc"] == 0.92
    assert out.loc["a0", "gap"] == pytest.approx(-0.07) and not out.loc["a0", "within"]
    assert out.loc["a1", "gap"] == pytest.approx(-0.04) and out.loc["a1", "within"]
    assert out.loc["f1", "gap"] == pytest.approx(-0.12) and not out.loc["f1", "within"]
    summary = report.teacher_fix_summary(out.reset_index(), "supervised").set_index("setting")
    assert summary.loc["as before", "within"] == 1 and summary.loc["fixed", "within"] == 1
    assert summary.loc["fixed", "criterion"] == pytest.approx(0.755)
    assert summary.loc["as before", "worst_gap"] == pytest.approx(-0.07)
    # chosen on the PU criterion alone: "fixed" (0.755 > 0.71), never the reference (0.99)
    assert summary.chosen.tolist() == [False, True, False]


def test_teacher_collapse_refuses_two_reference_teachers_for_one_seed():
    teachers, log = _collapse_inputs()
    twice = pd.concat([teachers, teachers.iloc[[4]].assign(run="s0b")], ignore_index=True)
    with pytest.raises(ValueError, match="more than one 'supervised' teacher"):
        report.teacher_collapse(twice, log, "supervised", margin=0.05)


# ---- the best model within each latency budget ----------------------------------------------------------
def frontier_frame():
    return pd.DataFrame({"model": ["fast", "tie slow", "tie fast", "slow", "big", "ensemble"],
                         "family": ["cnn", "gru", "cnn", "transformer", "teacher", "ensemble"],
                         "accuracy": [0.80, 0.85, 0.85, 0.88, 0.90, 0.95],
                         "ms_batch1": [1.0, 4.0, 3.0, 20.0, 70.0, np.nan]})


def test_best_within_budgets_takes_the_most_accurate_model_that_fits_each_budget():
    best = report.best_within_budgets(frontier_frame(), [0.5, 1, 3.5, 5, 100])
    assert list(best.columns) == ["budget", "model", "family", "accuracy", "ms_batch1"]
    assert list(best.budget) == [0.5, 1, 3.5, 5, 100]
    # a budget below every model: a row that says so
    assert pd.isna(best.model[0]) and pd.isna(best.family[0]) and np.isnan(best.accuracy[0]) and np.isnan(best.ms_batch1[0])
    assert best.model.tolist()[1:] == ["fast", "tie fast", "tie fast", "big"]  # at most the budget: 1 ms fits 1.0 ms
    assert best.accuracy.tolist()[1:] == [0.80, 0.85, 0.85, 0.90] and best.family.iloc[2] == "cnn"
    # the tie (0.85 at 3 ms and at 4 ms) goes to the lower latency, whatever the row order
    assert report.best_within_budgets(frontier_frame().iloc[::-1], [5]).model.tolist() == ["tie fast"]


def test_best_within_budgets_never_picks_a_model_without_a_latency_and_takes_other_columns():
    f = frontier_frame().assign(ms_batched=[2.0, 1.0, 1.5, 3.0, 9.0, np.nan], f1=[0.9, 0.1, 0.2, 0.3, 0.4, 0.99])
    assert "ensemble" not in set(report.best_within_budgets(f, [1e9]).model)
    alt = report.best_within_budgets(f, [1.2, 1.6], latency="ms_batched", score="f1")
    assert alt.model.tolist() == ["tie slow", "tie fast"] and list(alt.columns) == ["budget", "model", "family", "f1", "ms_batched"]
    with pytest.raises(ValueError, match="no column"):
        report.best_within_budgets(f.drop(columns="family"), [1])
