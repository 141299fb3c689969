"""Paired comparisons for the reports: thin wrappers of scipy and statsmodels; the few formulas of our
own (`gap_share`'s delta-method CI, `variance_components`, `tost_power`) are checked against
simulations in tests/test_stats.py.

* `paired(a, b)`: matched runs (e.g. a KD run and its from-scratch twin: same arch, size, seed).
  The differences d = a - b give the mean difference with its t-based 95% CI
  (`scipy.stats.ttest_1samp(d).confidence_interval()`), the paired t-test's two-sided p, the
  standardized effect Cohen's d_z = mean(d) / sd(d) with an exact CI from the noncentral t
  distribution (`scipy.special.nctdtrinc`, as in statsmodels' effect_size module), and the wins.
* `holm(p)`: Holm's step-down adjustment, `statsmodels.stats.multitest.multipletests(method="holm")`.
* `pooled(d, cells)`: one test over a family of cells. Cells are the unit: the per-cell mean
  differences go into a one-sample t-test (the spread between cells is the error term, as in the
  classical random-effects test of a balanced design; seeds of one cell are not independent
  replicates of the whole family), with a Wilcoxon signed-rank test on the same cell means as a
  distribution-free check.
* `tost(a, b, margin, cells=None)`: two one-sided tests that the mean of a − b lies within ±margin
  (`statsmodels.stats.weightstats.ttost_paired`; with `cells`, on the cell means, as `pooled`).
* `gap_share(kd, scratch, teacher)`: the share of the scratch → teacher gap a paired arm closes, with
  a delta-method CI over the pairs.
* `variance_components(d, cells)`, `tost_power`, `pairs_needed`: the spread within and between cells
  and how many pairs per cell a TOST would need (scipy's noncentral t).

Which runs may share a table: `code_version(record)` names the code that made a run (from its
provenance block; runs from before that block existed are `EARLIER`), and `majority(versions,
finished)` picks the version shared by most runs (ties: the version of the most recently finished).

Fewer than two usable pairs (or cells), or differences that are all equal (up to rounding), give
NaN for the tests and intervals, never an error.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

NAN = float("nan")


def _spread(x: np.ndarray) -> bool:
    """Two or more values that are not all equal (up to rounding: 1e-12 of their scale, at least 1e-12)."""
    return len(x) > 1 and float(np.ptp(x)) > 1e-12 * max(1.0, float(np.abs(x).max()))


def paired(a, b, confidence: float = 0.95) -> dict:
    """Paired comparison of a and b (same length, matched by position); pairs with a NaN are dropped.

    Returns n, mean_a, mean_b, diff (mean of a - b), diff_sd, ci_low, ci_high (t-based CI of the
    mean difference), p (paired t-test, two-sided), d_z (mean / sd of the differences),
    d_z_ci_low, d_z_ci_high (noncentral-t CI), wins (pairs with a > b), losses (a < b)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = a - b
    n = len(d)
    out = {"n": n, "mean_a": a.mean() if n else NAN, "mean_b": b.mean() if n else NAN,
           "diff": d.mean() if n else NAN, "diff_sd": d.std(ddof=1) if n > 1 else NAN,
           "ci_low": NAN, "ci_high": NAN, "p": NAN, "d_z": NAN, "d_z_ci_low": NAN, "d_z_ci_high": NAN,
           "wins": int((d > 0).sum()), "losses": int((d < 0).sum())}
    if not _spread(d):
        return out
    t = stats.ttest_1samp(d, 0.0)
    ci = t.confidence_interval(confidence)
    nc = special.nctdtrinc(n - 1, [(1 + confidence) / 2, (1 - confidence) / 2], t.statistic)
    out.update(ci_low=float(ci.low), ci_high=float(ci.high), p=float(t.pvalue),
               d_z=out["diff"] / out["diff_sd"], d_z_ci_low=float(nc[0] / np.sqrt(n)),
               d_z_ci_high=float(nc[1] / np.sqrt(n)))
    return out


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values, in the input order; NaN entries stay NaN and are not counted in the family."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def _by_cell(d, cells) -> tuple[np.ndarray, list[np.ndarray]]:
    """The finite values of `d` and, in the order the cells first appear, each cell's finite values."""
    d = np.asarray(d, dtype=float)
    cells = np.asarray(cells, dtype=object)
    if d.shape != cells.shape:
        raise ValueError(f"d and cells differ in length: {d.shape} vs {cells.shape}")
    ok = np.isfinite(d)
    d, cells = d[ok], cells[ok]
    return d, [d[cells == c] for c in dict.fromkeys(cells.tolist())]


def pooled(d, cells, confidence: float = 0.95) -> dict:
    """One test over a family of cells from paired differences `d` labelled by `cells`.

    Returns n_pairs, n_cells, mean (mean of the cell means), ci_low, ci_high (t-based CI of it),
    p (one-sample t-test on the cell means), p_wilcoxon (signed-rank test on the cell means),
    wins (pairs with d > 0), losses (d < 0)."""
    d, groups = _by_cell(d, cells)
    means = np.array([g.mean() for g in groups])
    out = {"n_pairs": len(d), "n_cells": len(means), "mean": means.mean() if len(means) else NAN,
           "ci_low": NAN, "ci_high": NAN, "p": NAN, "p_wilcoxon": NAN,
           "wins": int((d > 0).sum()), "losses": int((d < 0).sum())}
    if not _spread(means):
        return out
    t = stats.ttest_1samp(means, 0.0)
    ci = t.confidence_interval(confidence)
    out.update(ci_low=float(ci.low), ci_high=float(ci.high), p=float(t.pvalue))
    if (means != 0).any():
        out["p_wilcoxon"] = float(stats.wilcoxon(means).pvalue)
    return out


EARLIER = "unrecorded (earlier pipeline)"


def code_version(record: dict) -> str:
    """The code version of a run's metrics.json: the hash of the kdlib code its notebook uses (of
    all kdlib's sources in runs made before that), the notebook's hash and the teacher's weights
    hash from its provenance block; `EARLIER` when the run records none."""
    prov = record.get("provenance") or {}
    code = prov.get("kdlib_code") or prov.get("kdlib_sources")
    if not code:
        return EARLIER
    notebook = prov.get("notebook") or {}
    weights = (prov.get("teacher") or {}).get("weights_hash")
    return ", ".join([f"kdlib {code}"]
                     + ([f"{notebook.get('name', 'notebook')}.py {notebook['hash']}"] if notebook.get("hash") else [])
                     + ([f"teacher weights {weights}"] if weights else []))


def majority(versions, finished=None):
    """The value of `versions` shared by most entries; a tie goes to the tied value of the entry
    with the latest `finished` time (NaN or missing times count as oldest; with no time recorded,
    the tied value seen first). None when empty."""
    versions = list(versions)
    if not versions:
        return None
    finished = [np.nan] * len(versions) if finished is None else [float(f) for f in finished]
    counts = {v: versions.count(v) for v in versions}
    top = max(counts.values())
    tied = [v for v in counts if counts[v] == top]
    if len(tied) == 1:
        return tied[0]
    latest = {v: max((f for w, f in zip(versions, finished) if w == v and np.isfinite(f)), default=-np.inf)
              for v in tied}
    return max(tied, key=lambda v: latest[v])


# ---- numbers as the reports write them ---------------------------------------------------------
def fmt(x, f: str = ".4f") -> str:
    """x in format `f`; "–" for None or a non-finite value."""
    return "–" if x is None or not np.isfinite(x) else f"{x:{f}}"


def fmt_ci(mean, lo, hi, f: str = "+.4f") -> str:
    """A mean with its interval, "+0.0040 [+0.0010, +0.0070]"; the mean alone when there is none."""
    return fmt(mean, f) + (f" [{lo:{f}}, {hi:{f}}]" if lo is not None and np.isfinite(lo) else "")


def fmt_p(p) -> str:
    """A p-value: "< 0.001", "0.034", or "–" when there is none."""
    return "–" if p is None or not np.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def md_table(frame, f: str = ".4f") -> str:
    """A Markdown table of `frame`: float columns in format `f` (via `fmt`, "–" for NaN), every
    other cell as it is (strings such as "+0.0040 [...]" are not re-parsed); "(none)" when empty."""
    if not len(frame):
        return "(none)\n"
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = [fmt(v, f) for v in out[c]]
    return out.to_markdown(index=False, disable_numparse=True) + "\n"


# ---- equivalence (TOST), shares of a gap, variance components and the pairs a TOST needs ----------
def _cell_means(a, b, cells):
    """a and b (paired by position) as their means per cell, cells in first-seen order; pairs with a NaN dropped."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if cells is None:
        return a[ok], b[ok]
    cells = np.asarray(cells, dtype=object)
    if cells.shape != a.shape:
        raise ValueError(f"values and cells differ in length: {a.shape} vs {cells.shape}")
    a, b, cells = a[ok], b[ok], cells[ok]
    keys = list(dict.fromkeys(cells.tolist()))
    return (np.array([a[cells == c].mean() for c in keys]), np.array([b[cells == c].mean() for c in keys]))


def tost(a, b, margin: float, cells=None, alpha: float = 0.05) -> dict:
    """Two one-sided tests (TOST) that the mean of a − b lies within ±margin:
    `statsmodels.stats.weightstats.ttost_paired(a, b, -margin, margin)`. a and b are paired by
    position; with `cells`, their means per cell are the pairs (cells as the unit, as `pooled`).

    Returns n (pairs or cells tested), margin, diff (mean of a − b), ci90_low, ci90_high (the
    t-based (1 − 2·alpha) CI: the TOST rejects at alpha exactly when it lies inside ±margin),
    p_tost (the larger of the two one-sided p), p_lower (H0: diff ≤ −margin), p_upper (H0: diff ≥
    margin), min_margin (the smallest margin this TOST would call equivalent at alpha: the CI's
    farther end from 0). NaN where there are fewer than two pairs or no spread."""
    from statsmodels.stats.weightstats import ttost_paired

    if not margin > 0:
        raise ValueError(f"the equivalence margin must be > 0, got {margin!r}")
    x, y = _cell_means(a, b, cells)
    d = x - y
    out = {"n": len(d), "margin": float(margin), "diff": d.mean() if len(d) else NAN, "ci90_low": NAN,
           "ci90_high": NAN, "p_tost": NAN, "p_lower": NAN, "p_upper": NAN, "min_margin": NAN}
    if not _spread(d):
        return out
    p, (_, p_lo, _), (_, p_up, _) = ttost_paired(x, y, -margin, margin)
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(1 - 2 * alpha)
    out.update(ci90_low=float(ci.low), ci90_high=float(ci.high), p_tost=float(p), p_lower=float(p_lo),
               p_upper=float(p_up), min_margin=float(max(abs(ci.low), abs(ci.high))))
    return out


def gap_share(kd, scratch, teacher: float, better: str = "higher", confidence: float = 0.95) -> dict:
    """The share of the scratch → teacher gap a paired arm closes: mean(kd − scratch) / (teacher −
    mean(scratch)) (kd and scratch paired by position, e.g. by seed; teacher one run, a constant).
    `better`: "higher" (accuracy) or "lower" (log-loss); the share is the same ratio either way and
    is NaN when the teacher is not better than the scratch mean (no gap to close).

    The CI is the delta method's with a t quantile on n − 1 df: the ratio's variance from the
    sample (co)variances of the gains and the scratch values over the pairs. (With 3 pairs a
    bootstrap over pairs has 10 distinct resamples; the t-based delta interval does not pretend
    to more.) It covers the student seeds only, not the teacher's run. Returns n, share, ci_low,
    ci_high, se, gain (mean of kd − scratch), gap (teacher − mean scratch)."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    kd, scratch = np.asarray(kd, dtype=float), np.asarray(scratch, dtype=float)
    if kd.shape != scratch.shape:
        raise ValueError(f"paired samples differ in length: {kd.shape} vs {scratch.shape}")
    ok = np.isfinite(kd) & np.isfinite(scratch)
    g, s = kd[ok] - scratch[ok], scratch[ok]
    n = len(g)
    out = {"n": n, "share": NAN, "ci_low": NAN, "ci_high": NAN, "se": NAN, "gain": g.mean() if n else NAN,
           "gap": teacher - s.mean() if n else NAN}
    gap = out["gap"]
    if not n or not np.isfinite(gap) or (gap <= 0 if better == "higher" else gap >= 0):
        return out
    out["share"] = out["gain"] / gap
    if n < 2:
        return out
    cov = np.cov(np.vstack([g, s]), ddof=1)  # [[var g, cov], [cov, var s]]
    grad = np.array([1 / gap, out["gain"] / gap ** 2])  # d share / d mean(g), d share / d mean(s)
    se = float(np.sqrt(max(grad @ cov @ grad, 0.0) / n))
    if se > 0:
        q = stats.t.ppf((1 + confidence) / 2, n - 1)
        out.update(se=se, ci_low=out["share"] - q * se, ci_high=out["share"] + q * se)
    return out


def variance_components(d, cells) -> dict:
    """One-way random-effects variance components of values `d` grouped by `cells` (method of moments,
    unbalanced cells allowed): within (the pooled within-cell variance, each cell with n_c − 1 df)
    and between (the variance of the cell means less the within part they carry, floored at 0).
    Returns within_sd, between_sd, n_cells, mean_n (the harmonic mean of the cell sizes)."""
    _, groups = _by_cell(d, cells)
    df = sum(len(x) - 1 for x in groups)
    out = {"within_sd": NAN, "between_sd": NAN, "n_cells": len(groups), "mean_n": NAN}
    if df < 1 or len(groups) < 2:
        return out
    within = sum(((x - x.mean()) ** 2).sum() for x in groups) / df
    means = np.array([x.mean() for x in groups])
    inv_n = np.mean([1 / len(x) for x in groups])
    out.update(within_sd=float(np.sqrt(within)), mean_n=float(1 / inv_n),
               between_sd=float(np.sqrt(max(means.var(ddof=1) - within * inv_n, 0.0))))
    return out


def tost_power(diff: float, se: float, df: int, margin: float, alpha: float = 0.05) -> float:
    """Approximate power of a TOST within ±margin at true mean difference `diff`, standard error `se`
    and `df` degrees of freedom: P(lower test rejects) + P(upper test rejects) − 1, each from the
    noncentral t (scipy.stats.nct), floored at 0 (the usual approximation, close when power is not
    small)."""
    if not (se > 0 and df >= 1 and margin > 0):
        return NAN
    q = stats.t.ppf(1 - alpha, df)
    lower = stats.nct.sf(q, df, (diff + margin) / se)
    upper = stats.nct.cdf(-q, df, (diff - margin) / se)
    return float(max(lower + upper - 1.0, 0.0))


def t_power(diff: float, se: float, df: int, alpha: float = 0.05) -> float:
    """Power of a two-sided one-sample t-test of 0 at true mean `diff`, standard error `se`, `df` degrees of
    freedom (scipy.stats.nct)."""
    if not (se > 0 and df >= 1):
        return NAN
    q = stats.t.ppf(1 - alpha / 2, df)
    nc = diff / se
    return float(stats.nct.sf(q, df, nc) + stats.nct.cdf(-q, df, nc))


def pairs_needed(diff: float, within_sd: float, between_sd: float, n_cells: int, margin: float | None = None,
                 power: float = 0.8, alpha: float = 0.05, most: int = 1000):
    """Seed pairs per cell that a test needs for `power` at a true difference `diff`: the TOST within
    ±margin (`tost_power`), or with `margin` None the two-sided t-test of 0 (`t_power`). Pooled over
    `n_cells` cells (cells as the unit: se = sqrt((between² + within² / n) / n_cells), df = n_cells − 1)
    when n_cells > 1, else in one cell (se = within / sqrt(n), df = n − 1). None when no n up to `most`
    reaches it (e.g. a TOST when |diff| ≥ margin, or when the spread between cells alone keeps the
    pooled test short of it)."""
    for n in range(2, most + 1):
        if n_cells > 1:
            se, df = np.sqrt((between_sd ** 2 + within_sd ** 2 / n) / n_cells), n_cells - 1
        else:
            se, df = within_sd / np.sqrt(n), n - 1
        got = t_power(diff, se, df, alpha) if margin is None else tost_power(diff, se, df, margin, alpha)
        if got >= power:
            return n
    return None
