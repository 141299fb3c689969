"""Paired comparisons for the reports: thin wrappers of scipy and statsmodels, no formulas of our own.

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


def pooled(d, cells, confidence: float = 0.95) -> dict:
    """One test over a family of cells from paired differences `d` labelled by `cells`.

    Returns n_pairs, n_cells, mean (mean of the cell means), ci_low, ci_high (t-based CI of it),
    p (one-sample t-test on the cell means), p_wilcoxon (signed-rank test on the cell means),
    wins (pairs with d > 0), losses (d < 0)."""
    d = np.asarray(d, dtype=float)
    cells = np.asarray(cells, dtype=object)
    if d.shape != cells.shape:
        raise ValueError(f"d and cells differ in length: {d.shape} vs {cells.shape}")
    ok = np.isfinite(d)
    d, cells = d[ok], cells[ok]
    means = np.array([d[cells == c].mean() for c in dict.fromkeys(cells.tolist())])
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
