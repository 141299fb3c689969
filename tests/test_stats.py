"""kdlib.stats against textbook numbers, hand-worked examples and independent scipy calls."""
import numpy as np
import pytest
from scipy import stats as sst

from kdlib import stats

# Student's sleep data (Cushny & Peebles; R's `sleep`): extra hours of sleep of 10 patients on two drugs.
DRUG1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
DRUG2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_matches_the_textbook_sleep_example():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9,
    # p-value = 0.002833, 95% CI -2.4598858 -0.7001142, mean difference -1.58 (group 1 - group 2)
    r = stats.paired(DRUG2, DRUG1)
    assert r["n"] == 10 and r["wins"] == 9 and r["losses"] == 0  # one patient unchanged
    assert r["diff"] == pytest.approx(1.58)
    assert r["ci_low"] == pytest.approx(0.7001142, abs=1e-6)
    assert r["ci_high"] == pytest.approx(2.4598858, abs=1e-6)
    assert r["p"] == pytest.approx(0.002833, abs=5e-7)
    assert r["mean_a"] == pytest.approx(np.mean(DRUG2)) and r["mean_b"] == pytest.approx(np.mean(DRUG1))
    # d_z = mean / sd of the differences = 1.58 / 1.229995
    assert r["d_z"] == pytest.approx(1.58 / 1.229995, rel=1e-5)
    # the same p from scipy's own paired test
    assert r["p"] == pytest.approx(sst.ttest_rel(DRUG2, DRUG1).pvalue)


def test_paired_effect_size_interval_inverts_the_noncentral_t():
    r = stats.paired(DRUG2, DRUG1)
    n, t_obs = 10, r["d_z"] * np.sqrt(10)
    # at the bounds the observed t is the 97.5% / 2.5% point of the noncentral t (independent: scipy.stats.nct)
    assert sst.nct.cdf(t_obs, n - 1, r["d_z_ci_low"] * np.sqrt(n)) == pytest.approx(0.975, abs=1e-6)
    assert sst.nct.cdf(t_obs, n - 1, r["d_z_ci_high"] * np.sqrt(n)) == pytest.approx(0.025, abs=1e-6)
    assert r["d_z_ci_low"] < r["d_z"] < r["d_z_ci_high"]
    # direction: swapping the samples mirrors the interval
    s = stats.paired(DRUG1, DRUG2)
    assert s["d_z_ci_low"] == pytest.approx(-r["d_z_ci_high"]) and s["ci_high"] == pytest.approx(-r["ci_low"])


def test_paired_with_fewer_than_two_pairs_or_no_spread_gives_nan():
    one = stats.paired([0.8], [0.7])
    assert one["n"] == 1 and one["diff"] == pytest.approx(0.1) and one["wins"] == 1
    assert all(np.isnan(one[k]) for k in ("p", "ci_low", "ci_high", "d_z", "d_z_ci_low", "diff_sd"))
    none = stats.paired([], [])
    assert none["n"] == 0 and np.isnan(none["diff"]) and np.isnan(none["mean_a"])
    flat = stats.paired([0.8, 0.9, 1.0], [0.7, 0.8, 0.9])  # every difference the same
    assert flat["n"] == 3 and flat["wins"] == 3 and np.isnan(flat["p"]) and np.isnan(flat["d_z"])


def test_paired_drops_pairs_with_a_nan_and_rejects_unequal_lengths():
    r = stats.paired([0.9, np.nan, 0.8, 0.85], [0.7, 0.6, np.nan, 0.8])
    assert r["n"] == 2 and r["diff"] == pytest.approx((0.2 + 0.05) / 2)
    assert r["p"] == pytest.approx(sst.ttest_rel([0.9, 0.85], [0.7, 0.8]).pvalue)
    with pytest.raises(ValueError):
        stats.paired([1, 2], [1, 2, 3])


def test_holm_against_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1


def test_holm_leaves_nan_out_of_the_family():
    out = stats.holm([0.01, np.nan, 0.04])  # a family of 2: 0.01*2, max(0.04*1, 0.02)
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])
    assert np.isnan(out[1])
    assert np.isnan(stats.holm([np.nan, np.nan])).all() and len(stats.holm([])) == 0


def test_pooled_treats_cells_as_the_unit():
    d = [1, 2, 3, 0, 1, 4]
    cells = ["a", "a", "a", "b", "b", "c"]  # cell means 2, 0.5, 4
    r = stats.pooled(d, cells)
    assert (r["n_pairs"], r["n_cells"], r["wins"], r["losses"]) == (6, 3, 5, 0)
    assert r["mean"] == pytest.approx(6.5 / 3)
    m = np.array([2, 0.5, 4])
    se = m.std(ddof=1) / np.sqrt(3)
    assert r["p"] == pytest.approx(2 * sst.t.sf(m.mean() / se, 2))
    assert r["ci_low"] == pytest.approx(m.mean() - sst.t.ppf(0.975, 2) * se)
    assert r["ci_high"] == pytest.approx(m.mean() + sst.t.ppf(0.975, 2) * se)
    # signed-rank, exact: all 3 cell means positive -> two-sided p = 2 / 2**3
    assert r["p_wilcoxon"] == pytest.approx(0.25)


def test_pooled_with_one_cell_gives_nan():
    r = stats.pooled([0.01, 0.02], ["a", "a"])
    assert r["n_cells"] == 1 and r["mean"] == pytest.approx(0.015)
    assert np.isnan(r["p"]) and np.isnan(r["p_wilcoxon"]) and np.isnan(r["ci_low"])
    e = stats.pooled([], [])
    assert e["n_cells"] == 0 and np.isnan(e["mean"])


def test_pooled_without_spread_between_cells_gives_nan():
    r = stats.pooled([0.1, 0.3, 0.2, 0.2], ["a", "a", "b", "b"])  # both cell means 0.2 (up to rounding)
    assert r["n_cells"] == 2 and r["mean"] == pytest.approx(0.2) and np.isnan(r["p"]) and np.isnan(r["ci_low"])


def test_code_version_reads_the_provenance_block_and_names_old_runs():
    assert stats.code_version({"params": {}}) == stats.EARLIER == "unrecorded (earlier pipeline)"
    rec = {"provenance": {"kdlib_sources": "abc", "notebook": {"name": "student", "hash": "def"},
                          "teacher": {"weights_hash": "123"}}}
    assert stats.code_version(rec) == "kdlib abc, student.py def, teacher weights 123"
    other = {"provenance": {**rec["provenance"], "notebook": {"name": "student", "hash": "xyz"}}}
    assert stats.code_version(other) != stats.code_version(rec)


def test_majority_counts_then_breaks_ties_by_the_latest_run():
    assert stats.majority(["a", "b", "a"]) == "a"
    assert stats.majority(["a", "b", "b", "a"], [1, 5, 2, 3]) == "b"  # tie: "b" finished last (5)
    assert stats.majority(["a", "b"], [4, np.nan]) == "a"  # an unrecorded time counts as oldest
    assert stats.majority(["b", "a"], [np.nan, np.nan]) == "b"  # no time recorded: the first seen
    assert stats.majority([]) is None


def test_report_number_formats():
    assert stats.fmt(0.12345) == "0.1235" and stats.fmt(float("nan")) == "–" and stats.fmt(None) == "–"
    assert stats.fmt_ci(0.004, 0.001, 0.007) == "+0.0040 [+0.0010, +0.0070]"
    assert stats.fmt_ci(0.004, float("nan"), float("nan")) == "+0.0040"
    assert stats.fmt_p(0.0004) == "< 0.001" and stats.fmt_p(0.0342) == "0.034" and stats.fmt_p(float("nan")) == "–"


def test_md_table_formats_floats_only_and_says_none_when_empty():
    import pandas as pd

    frame = pd.DataFrame({"arm": ["kd", "scratch"], "accuracy": [0.87654, float("nan")], "n": [5, 5],
                          "diff": ["+0.0040 [+0.0010, +0.0070]", "–"]})
    lines = stats.md_table(frame, ".3f").splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["arm", "accuracy", "n", "diff"]
    assert [c.strip() for c in lines[3].split("|")[1:-1]] == ["scratch", "–", "5", "–"]  # ints stay ints
    assert "0.877" in lines[2] and "+0.0040 [+0.0010, +0.0070]" in lines[2] and "–" in lines[3]
    assert "0.87654" not in lines[2] and lines[2].count("|") == 5
    assert stats.md_table(frame.iloc[:0]) == "(none)\n"


# ---- equivalence, gap shares, variance components, power ------------------------------------------
def test_tost_is_statsmodels_and_its_90_ci_decides():
    from statsmodels.stats.weightstats import ttost_paired
    a = np.array([0.010, 0.012, 0.009, 0.011, 0.013])
    b = np.array([0.011, 0.010, 0.010, 0.012, 0.011])
    r = stats.tost(a, b, 0.003)
    want = ttost_paired(a, b, -0.003, 0.003)
    assert r["p_tost"] == pytest.approx(want[0]) and r["p_lower"] == pytest.approx(want[1][1])
    assert r["p_upper"] == pytest.approx(want[2][1]) and r["n"] == 5
    d = a - b
    half = sst.t.ppf(0.95, 4) * d.std(ddof=1) / np.sqrt(5)
    assert (r["ci90_low"], r["ci90_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert r["min_margin"] == pytest.approx(max(abs(d.mean() - half), abs(d.mean() + half)))
    # the TOST rejects at 0.05 exactly when the 90% CI lies inside ±margin
    for m in (r["min_margin"] * 0.99, r["min_margin"] * 1.01):
        assert (stats.tost(a, b, m)["p_tost"] < 0.05) == (m > r["min_margin"])
    # a difference far outside the margin is not equivalent
    assert stats.tost(a + 0.01, b, 0.003)["p_tost"] > 0.5


def test_tost_with_cells_tests_the_cell_means():
    a = [1.0, 1.2, 0.9, 1.1, 1.3, 1.0]
    b = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    cells = ["x", "x", "y", "y", "z", "z"]
    r = stats.tost(a, b, 0.5, cells=cells)
    r2 = stats.tost([1.1, 1.0, 1.15], [1.0, 1.0, 1.0], 0.5)
    assert r["n"] == 3 and r["p_tost"] == pytest.approx(r2["p_tost"]) and r["diff"] == pytest.approx(0.25 / 3 + 0.0)
    assert np.isnan(stats.tost([1.0], [0.0], 0.5)["p_tost"])
    with pytest.raises(ValueError):
        stats.tost(a, b, 0.0)


def test_gap_share_without_scratch_spread_is_the_gain_ci_over_the_gap():
    scratch = np.full(4, 0.80)
    kd = np.array([0.81, 0.83, 0.82, 0.84])
    r = stats.gap_share(kd, scratch, teacher=0.90)
    p = stats.paired(kd, scratch)
    assert r["share"] == pytest.approx(p["diff"] / 0.10)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((p["ci_low"] / 0.10, p["ci_high"] / 0.10))
    # log-loss: lower is better, the same ratio
    ll = stats.gap_share(1 - kd, 1 - scratch, teacher=0.10, better="lower")
    assert ll["share"] == pytest.approx(r["share"]) and ll["ci_low"] == pytest.approx(r["ci_low"])
    # no gap to close: NaN
    assert np.isnan(stats.gap_share(kd, scratch, teacher=0.79)["share"])
    assert np.isnan(stats.gap_share(1 - kd, 1 - scratch, teacher=0.5, better="lower")["share"])


def test_gap_share_ci_covers_the_true_share_about_95_percent():
    rng = np.random.default_rng(1)
    n, teacher, mu_s, mu_g = 10, 0.45, 0.40, 0.02  # true share 0.4
    cover = 0
    sims = 2000
    for _ in range(sims):
        s = mu_s + rng.normal(0, 0.01, n)
        g = mu_g + 0.3 * (s - mu_s) + rng.normal(0, 0.006, n)  # gains that depend on the scratch value
        r = stats.gap_share(s + g, s, teacher)
        cover += r["ci_low"] <= mu_g / (teacher - mu_s) <= r["ci_high"]
    assert 0.91 <= cover / sims <= 0.975


def test_variance_components_recover_known_spreads():
    rng = np.random.default_rng(2)
    cells = np.repeat(np.arange(400), 5)
    d = rng.normal(0, 0.004, 400)[cells] + rng.normal(0, 0.006, len(cells))
    r = stats.variance_components(d, cells)
    assert r["within_sd"] == pytest.approx(0.006, rel=0.05) and r["between_sd"] == pytest.approx(0.004, rel=0.15)
    assert r["n_cells"] == 400 and r["mean_n"] == pytest.approx(5)
    none = stats.variance_components(rng.normal(0, 1, 60), np.repeat(np.arange(12), 5))
    assert none["between_sd"] < 0.3  # no spread between cells: near 0
    assert np.isnan(stats.variance_components([1.0, 2.0], ["a", "b"])["within_sd"])


def test_tost_power_matches_a_simulation_and_pairs_needed_reaches_it():
    from statsmodels.stats.weightstats import ttost_paired
    rng = np.random.default_rng(3)
    n, sd, m, true = 12, 0.006, 0.004, 0.001
    hits = sum(ttost_paired(true + rng.normal(0, sd, n), np.zeros(n), -m, m)[0] < 0.05 for _ in range(3000))
    assert stats.tost_power(true, sd / np.sqrt(n), n - 1, m) == pytest.approx(hits / 3000, abs=0.04)
    assert stats.tost_power(0.01, 0.001, 10, 0.004) < 0.01  # a true difference outside the margin
    k = stats.pairs_needed(0.0, sd, 0.0, 1, m)
    assert stats.tost_power(0.0, sd / np.sqrt(k), k - 1, m) >= 0.8 > stats.tost_power(0.0, sd / np.sqrt(k - 1), k - 2, m)
    # pooled over cells: more pairs cannot beat the spread between cells
    assert stats.pairs_needed(0.0, sd, 0.01, 8, m) is None
    assert stats.pairs_needed(0.0, sd, 0.0, 8, m) < k


def test_t_power_matches_statsmodels_and_pairs_needed_for_a_difference():
    from statsmodels.stats.power import TTestPower
    want = TTestPower().power(effect_size=0.5, nobs=20, alpha=0.05, alternative="two-sided")
    assert stats.t_power(0.5, 1 / np.sqrt(20), 19) == pytest.approx(want, abs=1e-6)
    k = stats.pairs_needed(0.003, 0.006, 0.0, 1)
    assert stats.t_power(0.003, 0.006 / np.sqrt(k), k - 1) >= 0.8 > stats.t_power(0.003, 0.006 / np.sqrt(k - 1), k - 2)
    assert stats.pairs_needed(0.0, 0.006, 0.0, 1) is None  # no difference to find
