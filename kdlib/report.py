"""The study logic the report notebooks share; each report keeps only its questions, figures and prose.

Only the report notebooks import this module (no run notebook reaches it, so it never re-keys a run).

* Run records: `read`, `val_at_best`, `student_row` (one run's metrics.json as a row), `load_runs`.
* Replicate teachers: `replicate_teachers` (the teachers that repeat the main fine-tune with another
  seed or split), `kd_gains` (KD − scratch per teacher and seed, each on its teacher's split),
  `gain_sources` (the KD gain's variance between teachers vs between student seeds).
* PU teachers: `teacher_fix` (a run's teacher optimisation off the defaults, in words), `teacher_collapse`
  (each chosen teacher against the reference teacher of its seed, and how low its test curve fell),
  `teacher_fix_summary` (per setting, and the one the PU-only criterion picks).
* PU criteria: `criterion_tracking` (does a PU-only validation criterion rank an online PU run's epochs
  as the true test ROC-AUC does; what choosing by it gives up).
* Pairing by seed: `matched` (two cells' values at their shared seeds; a pair whose runs record
  different initial weights, `init_hash`, is an error), `paired_row` (kdlib.stats.paired of them),
  `versus` (every arm of a column − a reference arm, per cell, paired by seed).
* Families of tests: a `Family` is named once in `FAMILIES`; `holm(frame, family)` adjusts p within
  it (one family per value of its `by` columns, e.g. per metric); pages state `Family.text()`, so the
  same comparison has one p Holm on every page that shows it. `pooled` tests over cells.
* Leave-out rules: `LeaveOut` (each run keeps the first reason that applies, with a short label).
* Numbers: `num`, `ci`, `pval`, `p_is`, `pm`, `nw` (kdlib.stats' formats, one place), `md` (a
  Markdown table of formatted text; kdlib.stats.md_table formats numbers).
* Equivalence: `verdict(p_tost, p_diff, margin)` (the words a page says for a TOST and a test of
  the difference together; never "no difference" without a TOST).
* Test scores: `stored_test_labels(npz)` (a teacher's stored test labels by id), `scores_log_loss(npz,
  labels)` (a run's test log-loss from its stored logits).
* Pages: `intervals_cover(unit, fixed)`, the line under every page's title on what its intervals cover.
* README: `write_block(readme, name, body, writer)` replaces the text between its markers only.
* Figures: `ARCH_COLOUR`, `colour`, `use_style()` (one rcParams set), `hidden_axis`, `n_text`.
* Cost: `best_within_budgets(frontier, budgets)` (per latency budget, the most accurate model that fits it).

Statistics are scipy's and statsmodels' (through kdlib.stats); frames are pandas'.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .stats import code_version

num, ci, pval = stats.fmt, stats.fmt_ci, stats.fmt_p


# ---- run records --------------------------------------------------------------------------------
def read(path) -> dict:
    """A JSON file (a run's metrics.json, a choice file)."""
    return json.loads(Path(path).read_text())


def val_at_best(record: dict) -> dict:
    """The validation metrics of the epoch a run kept (chosen on validation accuracy)."""
    if "val" in record:
        return record["val"]
    best = {e["epoch"]: e for e in record.get("history", [])}.get(record["best_epoch"], {})
    return {k[4:]: v for k, v in best.items() if k.startswith("val_")}


def _transfer(p: dict) -> int:
    return int(p["transfer_count"] if "transfer_count" in p else (p.get("transfer_n") or 0))


def student_row(path, metrics=("accuracy", "precision", "recall", "f1", "roc_auc")) -> dict:
    """One student run (notebooks/student.py's metrics.json) as a row of its recorded parameters and results;
    `metrics`: the test metrics to read (NaN when the run has none)."""
    r = read(path)
    p, cal, execution = r["params"], r.get("calibration") or {}, r.get("execution") or {}
    val = val_at_best(r)
    return {"name": r["name"], "path": str(Path(path).resolve()), "task": p.get("task", "binary"),
            "teacher_task": p.get("teacher_task", "binary"), "arch": p["arch"], "hidden": int(p["hidden"]),
            "seed": int(p["seed"]), "T": float(p["T"]), "alpha": float(p["alpha"]), "lr": float(p["lr"]),
            "targets": p.get("targets", "soft"), "teacher_run": p.get("teacher_run", "teacher"),
            "teacher_checkpoint": p["teacher_checkpoint"], "transfer": _transfer(p),
            "match_steps": p.get("match_steps") or "", "augmented": any("augment" in k for k in p),
            "emb_init": p.get("emb_init", "random"),
            "budget": f"epochs {p['epochs']}, patience {p.get('patience', '–')}",
            **{m: r["test"].get(m, np.nan) for m in metrics}, "n_test": r["test"].get("n", np.nan),
            "val_accuracy": val.get("accuracy", np.nan), "val_roc_auc": val.get("roc_auc", np.nan),
            **{f"{k}_{w}": cal.get(w, {}).get(k, np.nan) for k in ("ece", "log_loss", "brier") for w in ("raw", "scaled")},
            "temperature": cal.get("scaled", {}).get("temperature", np.nan),
            "smoothing": float(r.get("smoothing", 0.0)), "optimizer_steps": r.get("optimizer_steps", np.nan),
            "best_epoch": r["best_epoch"], "epochs_run": (r.get("stopped") or {}).get("epochs_run", np.nan),
            "params_other": r["params_count"]["other"], "params_total": r["params_count"]["total"],
            "train_seconds": r.get("train_seconds", np.nan), "code_version": code_version(r),
            "started": execution.get("started", np.nan), "finished": execution.get("finished", np.nan),
            "init_hash": r.get("init_hash"), "epochs": p["epochs"], "patience": p.get("patience"),
            "stopped": (r.get("stopped") or {}).get("reason")}


def load_runs(files, row=student_row, columns=None, **kw) -> pd.DataFrame:
    """The runs of `files` as a frame of `row(file, **kw)`, in the files' order; only `columns` when given."""
    frame = pd.DataFrame([row(f, **kw) for f in files])
    return frame[list(columns)] if columns is not None and len(frame) else frame


def machine_of(record: dict) -> str:
    """The processor a run recorded (`provenance.machine`: CPU model and the vector set torch used),
    or "not recorded" for a run made before runs recorded it."""
    m = (record.get("provenance") or {}).get("machine") or {}
    return f"{m['cpu']} ({m.get('cpu_capability') or '?'})" if m.get("cpu") else "not recorded"


def rerun_spread(pairs, metrics=("accuracy", "roc_auc")) -> pd.DataFrame:
    """One row per (original, rerun) pair of a student's records (metrics.json, read): its cell, the
    machines each ran on, each test metric before and after and the change, the best epochs, and
    whether the test scores came out identical (every recorded test metric equal)."""
    rows = []
    for orig, again in pairs:
        if orig["params"] != again["params"]:
            raise ValueError(f"{orig['name']}: the rerun has other parameters than the original")
        p = orig["params"]
        rows.append({"name": orig["name"], "arch": p["arch"], "hidden": int(p["hidden"]), "seed": int(p["seed"]),
                     "arm": "scratch" if float(p["alpha"]) == 0 else p.get("targets", "soft"),
                     "machine": machine_of(orig), "rerun_machine": machine_of(again),
                     **{f"{m}{s}": r["test"][m] for m in metrics for s, r in (("", orig), ("_rerun", again))},
                     **{f"{m}_change": again["test"][m] - orig["test"][m] for m in metrics},
                     "best_epoch": orig["best_epoch"], "best_epoch_rerun": again["best_epoch"],
                     "identical": orig["test"] == again["test"]})
    return pd.DataFrame(rows)


def rerun_pair_changes(spread: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per (arch, hidden, seed) where both the scratch and the distilled (soft) run were rerun: KD −
    scratch of `metric` as committed and as rerun, and how much the paired difference moved."""
    rows = []
    for (arch, hidden, seed), g in spread.groupby(["arch", "hidden", "seed"]):
        arms = g.set_index("arm")
        if {"scratch", "soft"} <= set(arms.index):
            before = arms.at["soft", metric] - arms.at["scratch", metric]
            after = arms.at["soft", f"{metric}_rerun"] - arms.at["scratch", f"{metric}_rerun"]
            rows.append({"arch": arch, "hidden": hidden, "seed": seed, "diff": before, "diff_rerun": after,
                         "change": after - before})
    return pd.DataFrame(rows, columns=["arch", "hidden", "seed", "diff", "diff_rerun", "change"])


# ---- teachers replicated with another seed or split ---------------------------------------------------
REPLICATE_KEYS = ("seed", "split_seed")
TEACHER_IGNORED = ("transfer_n",)  # labelling the pool adds logits; it does not change the fine-tune


def replicate_teachers(teachers: dict, main: str, vary=REPLICATE_KEYS, ignore=TEACHER_IGNORED) -> dict:
    """The teacher runs (name -> metrics.json record) that repeat `main`'s fine-tune with only `vary` changed:
    name -> "main" (`main` itself), "teacher seed" (only its seed differs), "split" (its train/validation split
    differs) or "rerun" (nothing differs: the same fine-tune made again). A teacher differing in anything else
    (T_train, task, a subset) is not a replicate and is not returned."""
    if main not in teachers:
        raise ValueError(f"replicate_teachers: the main teacher {main!r} is not among {sorted(teachers)}")
    base = {k: v for k, v in teachers[main]["params"].items() if k not in (*vary, *ignore)}
    out = {}
    for name, rec in teachers.items():
        p = rec["params"]
        if {k: v for k, v in p.items() if k not in (*vary, *ignore)} != base:
            continue
        moved = [k for k in vary if p.get(k) != teachers[main]["params"].get(k)]
        out[name] = ("main" if name == main else "rerun") if not moved else (
            "split" if "split_seed" in moved else "teacher seed")
    return out


def kd_gains(runs: pd.DataFrame, sources: dict, metric: str = "accuracy") -> pd.DataFrame:
    """KD − scratch of `metric` per (arch, hidden, teacher_run, seed) for the teachers of `sources`
    (replicate_teachers' answer). A KD run (alpha > 0) is paired with the scratch run of the same cell and
    seed on its teacher's split: the scratch run of its own teacher where there is one (another split),
    else of the main teacher (same split: a teacher seed's scratch twin is the main study's)."""
    main = [t for t, s in sources.items() if s == "main"]
    sources = {t: s for t, s in sources.items() if s != "rerun"}  # a rerun's students would pair with main's
    scratch = runs[runs.alpha == 0].set_index(["arch", "hidden", "teacher_run", "seed"])[metric]
    rows = []
    for r in runs[(runs.alpha > 0) & runs.teacher_run.isin(list(sources))].itertuples():
        twin_teacher = r.teacher_run if sources[r.teacher_run] == "split" else main[0]
        key = (r.arch, r.hidden, twin_teacher, r.seed)
        if key in scratch.index:
            rows.append({"arch": r.arch, "hidden": r.hidden, "teacher_run": r.teacher_run,
                         "source": sources[r.teacher_run], "seed": r.seed, "kd": getattr(r, metric),
                         "scratch": scratch[key], "gain": getattr(r, metric) - scratch[key]})
    return pd.DataFrame(rows, columns=["arch", "hidden", "teacher_run", "source", "seed", "kd", "scratch", "gain"])


def gain_sources(gains: pd.DataFrame, seeds=None) -> pd.DataFrame:
    """Per (arch, hidden) and per source of variation ("teacher seed": the main teacher and its seed
    replicates; "split": the main teacher and its split replicates), the KD gain's variance split into
    the part between teachers and the part between student seeds within a teacher
    (stats.variance_components; cells are teachers), over the student `seeds` (default: those every
    teacher of the family has, so the cells are balanced)."""
    rows = []
    for (arch, hidden), g in gains.groupby(["arch", "hidden"]):
        for source in ("teacher seed", "split"):
            fam = g[g.source.isin(["main", source])]
            common = (set.intersection(*[set(x.seed) for _, x in fam.groupby("teacher_run")])
                      if len(fam) else set())
            fam = fam[fam.seed.isin(common if seeds is None else set(seeds) & common)]
            vc = stats.variance_components(fam.gain.to_numpy(), fam.teacher_run.to_numpy())
            rows.append({"arch": arch, "hidden": hidden, "source": source,
                         "teachers": fam.teacher_run.nunique(), "seeds": len(common),
                         "mean_gain": fam.gain.mean() if len(fam) else np.nan,
                         "between_sd": vc["between_sd"], "within_sd": vc["within_sd"]})
    return pd.DataFrame(rows, columns=["arch", "hidden", "source", "teachers", "seeds", "mean_gain",
                                       "between_sd", "within_sd"])


# ---- PU-only criteria beside the true-label curves ------------------------------------------------------
PU_CRITERIA = {"val_lu_auc": "higher", "val_pu_risk": "lower"}  # online_pu.py's log.csv columns


def criterion_tracking(log: pd.DataFrame, criterion: str, truth: str = "roc_auc") -> pd.DataFrame:
    """Per (run, model) of an online PU log (rows of meta_epoch, model, split, `truth`, `criterion`): how well a
    PU-only validation criterion tracks the true-label test `truth` over the logged meta-epochs — Spearman's rho
    (signed so that +1 means "ranks the epochs as the test metric does"), the epoch it picks, the test-best epoch,
    and the regret (test `truth` at the best epoch − at the picked one; the test set only reports)."""
    if criterion not in PU_CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(PU_CRITERIA)}, got {criterion!r}")
    from scipy.stats import spearmanr

    sign = 1.0 if PU_CRITERIA[criterion] == "higher" else -1.0
    rows = []
    for (run, model), g in log[log.split == "test"].dropna(subset=[criterion]).groupby(["run", "model"], sort=False):
        g = g.sort_values("meta_epoch")
        score = sign * g[criterion].to_numpy(dtype=float)
        true = g[truth].to_numpy(dtype=float)
        picked, best = int(np.argmax(score)), int(np.argmax(true))  # ties: the earlier epoch, as the selection keeps
        rho = spearmanr(score, true).statistic if len(g) > 2 and np.ptp(score) > 0 and np.ptp(true) > 0 else np.nan
        rows.append({"run": run, "model": model, "epochs": len(g), "rho": float(rho),
                     "picked": int(g.meta_epoch.iloc[picked]), "best": int(g.meta_epoch.iloc[best]),
                     "regret": float(true[best] - true[picked])})
    return pd.DataFrame(rows, columns=["run", "model", "epochs", "rho", "picked", "best", "regret"])


# ---- a PU teacher's fixes, and does it still collapse? -------------------------------------------------
# online_pu.py's teacher optimisation parameters: (default, words for a value off it)
TEACHER_FIXES = {
    "accumulate": (1, lambda v: f"{v} batches a step"),
    "teacher_weight_decay": (0.0, lambda v: f"weight decay {v:g}"),
    "teacher_schedule": ("constant", lambda v: "linear warm-up and decay of the lr" if v == "linear" else f"lr {v}"),
    "nnpu_beta": (0.0, lambda v: f"β={v:g}"),
    "nnpu_gamma": (1.0, lambda v: f"γ={v:g}"),
}


def teacher_fix(params: dict) -> str:
    """How a PU run's teacher optimisation differs from online_pu.py's defaults, in words joined by " + "
    ("" at the defaults; a parameter the run does not record is at its default)."""
    return " + ".join(say(params[k]) for k, (default, say) in TEACHER_FIXES.items()
                      if params.get(k, default) != default)


def teacher_collapse(teachers: pd.DataFrame, log: pd.DataFrame, reference: str, margin: float,
                     setting: str = "setting") -> pd.DataFrame:
    """Per PU teacher (one row of `teachers` per setting and seed: run, `setting`, seed, teacher_picked, the
    meta-epoch chosen on PU validation, teacher_criterion, its PU-only value, teacher_roc_auc, its test
    ROC-AUC) with its per-meta-epoch test curve from `log` (run, model, split, meta_epoch, roc_auc): the
    test ROC-AUC at the last meta-epoch and the lowest, the `reference` setting's chosen teacher of the
    same seed (e.g. the supervised one of the same budget), the gap to it and whether it is within
    `margin` (the test set reports; nothing here chooses)."""
    curve = log[(log.model == "teacher") & (log.split == "test")].sort_values("meta_epoch").groupby("run").roc_auc
    out = teachers[["run", setting, "seed", "teacher_picked", "teacher_criterion", "teacher_roc_auc"]].copy()
    out["last_roc_auc"] = out.run.map(curve.last())
    out["lowest_roc_auc"] = out.run.map(curve.min())
    ref = teachers[teachers[setting] == reference].set_index("seed").teacher_roc_auc
    if ref.index.duplicated().any():
        raise ValueError(f"more than one {reference!r} teacher for a seed: {sorted(ref.index[ref.index.duplicated()])}")
    out["reference_roc_auc"] = out.seed.map(ref)
    out["gap"] = out.teacher_roc_auc - out.reference_roc_auc
    out["within"] = out.gap >= -margin
    return out.reset_index(drop=True)


def teacher_fix_summary(collapse: pd.DataFrame, reference: str, setting: str = "setting") -> pd.DataFrame:
    """`teacher_collapse`'s rows per setting: seeds, the mean PU-only criterion of the chosen teachers
    (`criterion`), their mean test ROC-AUC, at the last meta-epoch, the worst gap to the reference, how many
    seeds are within the margin, and `chosen`: the setting other than the reference with the highest mean
    criterion (the choice made on PU validation data alone; ties: the first declared)."""
    g = collapse.groupby(setting, sort=False)
    out = pd.DataFrame({"seeds": g.seed.nunique(), "criterion": g.teacher_criterion.mean(),
                        "roc_auc": g.teacher_roc_auc.mean(), "last_roc_auc": g.last_roc_auc.mean(),
                        "worst_gap": g.gap.min(), "within": g.within.sum()}).reset_index()
    candidates = out[out[setting] != reference]
    out["chosen"] = False
    if len(candidates) and candidates.criterion.notna().any():
        out.loc[candidates.criterion.idxmax(), "chosen"] = True
    return out


# ---- pairing by seed ----------------------------------------------------------------------------
def matched(a: pd.DataFrame, b: pd.DataFrame, col: str, by: str = "seed", same_init: bool = True):
    """`col` of runs a and b (one cell each, a column `by`) at the `by` values both have: two Series aligned
    by it. With `same_init`, where both runs of a pair record `init_hash` they must share it (the same initial
    weights; False for students whose networks differ, e.g. in their heads)."""
    x, y = a.set_index(by), b.set_index(by)
    keys = x.index.intersection(y.index).sort_values()
    if same_init and "init_hash" in x and "init_hash" in y:
        i, j = x.loc[keys, "init_hash"], y.loc[keys, "init_hash"]
        bad = i.notna() & j.notna() & (i != j)
        if bad.any():
            raise ValueError(f"pairs by {by} {list(keys[bad.to_numpy()])} do not share their initial weights (init_hash)")
    return x.loc[keys, col], y.loc[keys, col]


def paired_row(a: pd.DataFrame, b: pd.DataFrame, col: str, margin: float | None = None, **labels) -> dict:
    """`labels`, the metric and kdlib.stats.paired of a − b on `col`, paired by seed; `seeds`: the seeds.
    With `margin`, also kdlib.stats.tost of the same pairs within ±margin, its fields prefixed `tost_`."""
    x, y = matched(a, b, col)
    row = {**labels, "metric": col, **stats.paired(x.to_numpy(float), y.to_numpy(float)), "seeds": list(x.index)}
    return {**row, **_tost_fields(x, y, margin)}


def _tost_fields(x, y, margin, cells=None) -> dict:
    if margin is None:
        return {}
    t = stats.tost(np.asarray(x, float), np.asarray(y, float), margin, cells=cells)
    return {f"tost_{k}": v for k, v in t.items() if k not in ("n", "diff")}


def _pairs(runs: pd.DataFrame, arm: str, reference, by, reference_first: bool):
    """(cell labels, arm value, a, b) for every arm of column `arm` other than `reference` in each cell of `by`
    that has the reference: a − b is the arm − the reference (`reference_first`: the reference − the arm)."""
    by = list(by)
    for cell, g in (runs.groupby(by, sort=False, observed=True) if by else [((), runs)]):
        cell = dict(zip(by, cell if isinstance(cell, tuple) else (cell,)))
        ref = g[g[arm] == reference]
        if not len(ref):
            continue
        for value in dict.fromkeys(g.loc[g[arm] != reference, arm]):
            other = g[g[arm] == value]
            yield cell, value, *((ref, other) if reference_first else (other, ref))


def versus(runs: pd.DataFrame, arm: str, reference, metrics, by=(), margins: dict | None = None,
           reference_first: bool = False) -> pd.DataFrame:
    """Every arm of column `arm` other than `reference` − the reference arm, in each cell of `by`, paired by
    seed (`paired_row`): one row per (cell, arm, metric), with the cell's and the arm's values as labels.
    A cell without the reference arm is skipped; an arm that shares no seed with it gives n = 0.
    `margins` ({metric: margin}): a TOST of each difference too (`tost_*` fields). `reference_first`: the
    reference − each arm instead (e.g. online − each offline variant)."""
    return pd.DataFrame([paired_row(a, b, m, (margins or {}).get(m), **cell, **{arm: value})
                         for cell, value, a, b in _pairs(runs, arm, reference, by, reference_first) for m in metrics])


def versus_pooled(runs: pd.DataFrame, arm: str, reference, metrics, over, by=(), margins: dict | None = None,
                  reference_first: bool = False) -> pd.DataFrame:
    """`versus` pooled over the settings `over` (columns) with the seed as the unit: where the settings of a
    seed are not independent (they share its data and teacher trajectory), each seed's mean difference over
    the settings both arms ran is one pair (kdlib.stats.paired; with `margins`, kdlib.stats.tost). Rows
    as `versus`, plus `settings`: how many settings entered."""
    over, rows = list(over), []
    for cell, value, a, b in _pairs(runs, arm, reference, by, reference_first):
        both = a.merge(b, on=over + ["seed"], suffixes=("_a", "_b"))
        for m in metrics:
            per_seed = both.groupby("seed")[[f"{m}_a", f"{m}_b"]].mean()
            x, y = per_seed[f"{m}_a"].to_numpy(float), per_seed[f"{m}_b"].to_numpy(float)
            rows.append({**cell, arm: value, "metric": m, "settings": both[over].drop_duplicates().shape[0],
                         **stats.paired(x, y), "seeds": list(per_seed.index), **_tost_fields(x, y, (margins or {}).get(m))})
    return pd.DataFrame(rows)


# ---- families of tests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """A named family of tests for Holm's correction. `about` says which tests it holds (stated on every
    page that uses it); `by`: columns whose values split it into separate families (e.g. one per metric)."""
    name: str
    about: str
    by: tuple = ("metric",)

    def text(self) -> str:
        return f"Holm family `{self.name}`: {self.about}"


FAMILIES = {f.name: f for f in [
    Family("imdb-kd-vs-scratch", "IMDB, two classes: KD at each architecture's validation-chosen (T, alpha) − scratch, "
           "every arch × hidden cell of study 1 with a seed pair; one family per metric"),
    Family("imdb-controls", "IMDB: each control (hard labels, smoothed labels at T = 1 and at KD's T, the teacher's "
           "outputs shuffled within a class, another teacher) − scratch and − KD, "
           "every cell with both; one family per reference and metric", ("b", "metric")),
    Family("imdb-transfer", "IMDB: the transfer-set comparisons (KD on train + pool vs scratch, self-training, "
           "matched-steps scratch, KD on train alone; not KD vs scratch, which is imdb-kd-vs-scratch's), every cell; "
           "one family per metric"),
    Family("imdb-calibration", "IMDB: KD − scratch in ECE, raw and temperature-scaled, every cell of study 1; one "
           "family per measure"),
    Family("rating-kd-vs-scratch", "IMDB, eight classes (stars): KD at the chosen setting − scratch, every cell "
           "both tasks have; one family per measure"),
    Family("rating-gain-difference", "IMDB: the eight-class KD gain − the two-class KD gain, paired by seed, every "
           "cell both tasks have"),
    Family("rating-teacher", "IMDB, two classes: a student of the rating teacher − a student of the binary teacher, "
           "every cell with both"),
    Family("rating-mass", "IMDB: KD − scratch in how close a student is to its teacher's distribution, every cell; "
           "one family per task and measure", ("task", "metric")),
    Family("rating-controls", "IMDB, eight classes: KD − each control, every cell; one family per control",
           ("control", "metric")),
    Family("rating-log-loss", "IMDB: KD − scratch in test log-loss (nats, the raw probabilities at T = 1), every cell "
           "both tasks have; one family per task", ("task", "metric")),
    Family("rating-pooled", "IMDB: the tests pooled over the cells both tasks have (cells as the unit, a one-sample "
           "t-test on the cell means): each task's KD gain and the eight-class gain − the two-class gain; one family "
           "per measure (accuracy, share of the scratch → teacher gap, log-loss)"),
    Family("rating-equivalence", "IMDB: TOST that the eight-class KD gain − the two-class KD gain (accuracy) lies "
           "within ± the margin stated in rating_report.py's parameters; one family for the pooled test (cells as "
           "the unit; a family of one: the page's one equivalence test of the pooled difference) and one for the cells (seed "
           "pairs), every cell both tasks have", ("level",)),
    Family("multi-fused-vs-single", "IMDB: the student of each fusion of all the teachers − the best single-teacher "
           "student (chosen on validation among every teacher's), every architecture and size; one family per metric"),
    Family("budget-vs-scratch", "IMDB label budget: each distilled arm (on n, on n + the pool) − scratch on n, every "
           "budget n below the whole split and architecture at one hidden size; one family for those rows of the table "
           "(the whole split's rows are study 1's cells, in imdb-kd-vs-scratch and imdb-transfer)", ()),
    Family("layers-vs-logits", "IMDB: a student distilled from the teacher's logits and layers (the last three, the "
           "probe's) − the same student from its logits alone, every teacher, architecture, size and setting", ()),
    Family("transformer-vs-finetune", "IMDB: a small transformer distilled (logits; logits + hidden states) − the "
           "same transformer fine-tuned without KD, every teacher and setting", ()),
    Family("pu-student-vs-teacher", "PU: the student's test ROC-AUC − its teacher's in the same run, every setting "
           "of one page (splice, IMDB-PU)", ()),
    Family("pu-methods", "PU: each method (the teacher's loss and the student's PU term alike) − imbalanced nnPU, "
           "the teacher and the student chosen alike on the PU validation set, every method and student of one page (a "
           "teacher once: it is the same for every student); one family per model and metric"),
    Family("pu-prior", "PU: a loss at another prior (Elkan–Noto's estimate, the oracle × 0.5, × 1.5) − the same loss "
           "at the oracle prior, chosen alike on the PU validation set, every loss, prior and student of one page (a "
           "teacher once); one family per model and metric"),
    Family("pu-online-vs-offline", "PU: the online student − the offline student at the same budget, the models taken "
           "at the end of it, every setting run both ways; one family per metric", ()),
    Family("pu-sar", "PU: a selection-biased labelling (SAR) − SCAR, the same method, setting and seed, every method, "
           "strength and student of one page (a teacher once); one family per model and metric"),
    Family("pu-online-vs-offline-teacher", "PU: the online student − an offline student taught by a named teacher of "
           "the same trajectory (the one chosen on the PU validation set, or the one after meta-epoch m), every model "
           "chosen on the PU validation set: per (student, alpha, label_share) setting, and per student pooled over "
           "the settings with the seed as the unit; one family per level (setting, pooled), metric and test "
           "(difference from 0; TOST within the margin)", ("level", "metric")),
    Family("splice-classes", "splice junctions: KD − scratch at the validation-chosen (T, alpha), every (task, "
           "architecture)"),
]}


def holm(frame: pd.DataFrame, family: Family | str, p: str = "p", out: str = "p_holm") -> pd.DataFrame:
    """`frame` with `out`: p Holm-adjusted within `family` (kdlib.stats.holm, statsmodels) per value of its
    `by` columns. The frame must hold every test of the family and nothing else."""
    family = FAMILIES[family] if isinstance(family, str) else family
    frame = frame.copy()
    if not len(frame):
        return frame.assign(**{out: pd.Series(dtype=float)})
    by = list(family.by)
    frame[out] = frame.groupby(by)[p].transform(stats.holm) if by else stats.holm(frame[p])
    return frame


def study1_p_holm(tables, hidden: int) -> dict:
    """Study 1's p and p Holm (accuracy) per (arch, arm) at `hidden`, from report.py's tables: arm "kd"
    (KD − scratch, students.csv, imdb-kd-vs-scratch) and "kd_pool" (KD on train + pool − scratch,
    transfer.csv, imdb-transfer). Another page showing those cells shows these values."""
    s = pd.read_csv(Path(tables) / "students.csv")
    t = pd.read_csv(Path(tables) / "transfer.csv")
    s = s[s.hidden == hidden]
    t = t[(t.hidden == hidden) & (t.a == "kd_transfer") & (t.b == "scratch") & (t.metric == "accuracy")]
    out = {(r.arch, "kd"): (r.acc_p, r.acc_p_holm) for r in s.itertuples()}
    return out | {(r.arch, "kd_pool"): (r.p, r.p_holm) for r in t.itertuples()}


def pooled(groups, columns=None) -> pd.DataFrame:
    """kdlib.stats.pooled (cells as the unit) for each (label, frame with `d` and `cell`) of `groups` with rows."""
    rows = [{"cells": label, **stats.pooled(d.d.astype(float), d.cell)} for label, d in groups if len(d)]
    return pd.DataFrame(rows, columns=columns)


# ---- leave-out rules ------------------------------------------------------------------------------
class LeaveOut:
    """Which runs of `frame` make the tables: each rule gives the runs it matches that no earlier rule took
    a reason (`left_out`) and a short label (`left_out_as`); `kept()` is the rest."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        frame["left_out"], frame["left_out_as"] = "", ""

    def __call__(self, mask, short: str, why):
        """Runs in `mask` still in get `why` (a text, or a Series of texts per run) and `short`."""
        f = self.frame
        m = mask & (f.left_out == "")
        f.loc[m, "left_out"] = why if isinstance(why, str) else why[m]
        f.loc[m, "left_out_as"] = short

    @property
    def ok(self) -> pd.Series:
        return self.frame.left_out == ""

    def kept(self) -> pd.DataFrame:
        return self.frame[self.ok].drop(columns=["left_out", "left_out_as"]).reset_index(drop=True)

    def left(self) -> pd.DataFrame:
        return self.frame[~self.ok]


# ---- numbers and tables ---------------------------------------------------------------------------
def p_is(p) -> str:
    """'p < 0.001', 'p = 0.034', 'p = –'."""
    return "p " + ("< 0.001" if p is not None and np.isfinite(p) and p < 0.001 else f"= {pval(p)}")


def pm(x) -> str:
    """Mean ± sd of `x` (sd with ddof 1); the mean alone for one value, '–' for none."""
    x = np.asarray(x, dtype=float)
    return f"{x.mean():.4f} ± {x.std(ddof=1):.4f}" if len(x) > 1 else (f"{x.mean():.4f}" if len(x) else "–")


def nw(n: int, word: str) -> str:
    """'1 cell', '3 cells'."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def md(frame: pd.DataFrame) -> str:
    """A Markdown table of already formatted values (no re-parsing of numbers); '(none)' when empty."""
    return frame.to_markdown(index=False, disable_numparse=True) if len(frame) else "(none)"


# ---- what a page's intervals cover ----------------------------------------------------------------
def intervals_cover(unit: str, fixed: str) -> str:
    """The line every study page prints under its title: what varies across its intervals and tests
    (`unit`, e.g. "student seeds") and what each is conditional on (`fixed`, e.g. "one teacher fine-tune
    and one train/validation split"), and that numbers repeat bit for bit on one machine only."""
    if not unit or not fixed:
        raise ValueError("intervals_cover needs what varies (unit) and what is held fixed (fixed)")
    return (f"**What the intervals cover.** Every interval and test on this page varies {unit} only; each is "
            f"conditional on {fixed}, whose own variation is not in it. A run repeats bit for bit on one machine, "
            "not across CPUs (another vector instruction set gives other last bits, and training amplifies them): "
            "a rerun on another machine can move a run by more than these intervals suggest "
            "([docs/methods.md](../docs/methods.md#what-every-number-stands-on)).")


# ---- README blocks ----------------------------------------------------------------------------------
def write_block(readme: Path, name: str, body: str, writer: str) -> bool | None:
    """Replace README's block `name` (from `<!-- name:start` to `<!-- name:end -->`) by `body` between fresh
    markers naming `writer`; the rest of the file is untouched. True when it changed, False when not,
    None when the file or its markers are missing (then nothing is written)."""
    readme = Path(readme)
    if not readme.exists():
        return None
    text = readme.read_text()
    pattern = re.compile(rf"<!-- {re.escape(name)}:start.*?<!-- {re.escape(name)}:end -->", flags=re.S)
    if not pattern.search(text):
        return None
    block = f"<!-- {name}:start (written by {writer}; do not edit by hand) -->\n{body}\n<!-- {name}:end -->"
    new = pattern.sub(lambda _: block, text, count=1)
    if new != text:
        readme.write_text(new)
    return new != text


# ---- one figure style -------------------------------------------------------------------------------
ARCH_COLOUR = {"gru": "#1f77b4", "cnn": "#d62728", "transformer": "#2ca02c", "teacher": "0.2"}
RC = {"figure.dpi": 120, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "axes.titlesize": 10}


def use_style():
    """The rcParams of every report figure."""
    import matplotlib.pyplot as plt
    plt.rcParams.update(RC)


def colour(arch: str) -> str:
    """An architecture's colour on every figure (grey for one without)."""
    return ARCH_COLOUR.get(arch, "0.5")


def n_text(ns) -> str:
    """The number of seeds per point of a figure: 'n = 3', 'n = 3–5', or 'n = –' for none."""
    ns = [int(n) for n in ns]
    if not ns:
        return "n = –"
    return f"n = {min(ns)}" if min(ns) == max(ns) else f"n = {min(ns)}–{max(ns)}"


def hidden_axis(ax, sizes, drawn: bool = True):
    """Hidden sizes on a log-2 axis labelled by their values; a panel without runs (`drawn` False) says so."""
    if drawn and len(sizes):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(sizes), [str(h) for h in sizes])
    else:
        ax.text(0.5, 0.5, "no runs yet", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xlabel("student hidden size (units; log scale)")


# ---- labels used, and where a curve that need not be monotone reaches a level ----------------------
def labelled_splits(path) -> dict:
    """The labelled reviews a run used, as its record gives them: `train_hash` and `val_hash` (the data hashes of
    its train and validation splits, provenance.inputs; None when not recorded) and `val_n` (how many validation
    reviews its kept epoch was scored on, the record's `val` metrics; NaN when it has none). A teacher record gives
    its splits' sizes in `logits` instead (`logits.val.n`)."""
    r = read(path)
    inputs = (r.get("provenance") or {}).get("inputs") or {}
    return {"train_hash": inputs.get("train"), "val_hash": inputs.get("val"),
            "val_n": (r.get("val") or {}).get("n", np.nan)}


def _between(x0, x1, y0, y1, level, log_x):
    f = (level - y0) / (y1 - y0)
    if log_x:
        return float(np.exp(np.log(x0) + f * (np.log(x1) - np.log(x0))))
    return float(x0 + f * (x1 - x0))


def crossings(x, y, level, log_x: bool = True) -> dict:
    """Where the curve y(x) reaches `level` (its points sorted by x, non-finite y dropped), each crossing
    interpolated linearly (in log x with `log_x`) between the two points around it:

    * `first`: the first x at which the curve reaches the level (x[0] when its first point already does;
      None when no point does): what "how much x to reach the level" reads off a curve;
    * `last`: the x from which on the curve stays at or above the level to its last point (its last upward
      crossing; None when its last point is below the level); equal to `first` unless the curve dips;
    * `dips`: the x of the points after the first crossing at which the curve is back below the level;
    * `monotone`: whether y never decreases from one point to the next;
    * `around`: the x of the two points around the first crossing ((x[0], x[0]) when the first point reaches
      the level, None when no point does).

    A curve that is not monotone can cross a level more than once; `first` alone then understates how much x
    the level takes for good, and `last` and `dips` say by how much."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(y) & np.isfinite(x)
    x, y = x[ok], y[ok]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if len(x) != len(np.unique(x)):
        raise ValueError(f"crossings: two points at the same x {x.tolist()}")
    if log_x and len(x) and x.min() <= 0:
        raise ValueError(f"crossings: x must be positive on a log scale, got {x.tolist()}")
    out = {"first": None, "last": None, "dips": [], "monotone": bool(np.all(np.diff(y) >= 0)), "around": None}
    above = y >= level
    if not above.any():
        return out
    i = int(np.argmax(above))
    out["first"] = float(x[0]) if i == 0 else _between(x[i - 1], x[i], y[i - 1], y[i], level, log_x)
    out["around"] = (float(x[0]), float(x[0])) if i == 0 else (float(x[i - 1]), float(x[i]))
    out["dips"] = [float(v) for v in x[i + 1:][~above[i + 1:]]]
    if above[-1]:
        below = np.flatnonzero(~above)
        j = int(below[-1]) if len(below) else -1
        out["last"] = float(x[0]) if j < 0 else _between(x[j], x[j + 1], y[j], y[j + 1], level, log_x)
    return out


# ---- equivalence in words ---------------------------------------------------------------------------
def verdict(p_tost, p_diff, margin: float, alpha: float = 0.05) -> str:
    """What a page may say of a difference from its TOST within ±margin (`p_tost`) and its test of a
    difference from 0 (`p_diff`), both already Holm-adjusted in their families: "equivalent within
    ±m", "different", "different, but within ±m" (both reject: a difference smaller than the
    margin), or "undecided at this n" (neither rejects, or a p is missing)."""
    eq = p_tost is not None and np.isfinite(p_tost) and p_tost < alpha
    diff = p_diff is not None and np.isfinite(p_diff) and p_diff < alpha
    m = f"±{margin:g}"
    if eq and diff:
        return f"different, but within {m}"
    return f"equivalent within {m}" if eq else "different" if diff else "undecided at this n"


# ---- test scores stored beside a run ------------------------------------------------------------------
def stored_test_labels(npz) -> pd.Series:
    """The test labels a teacher run stores beside its test logits (test_scores.npz: ids, labels), by id."""
    z = np.load(npz)
    if "labels" not in z:
        raise ValueError(f"{npz} holds no labels (a teacher run stores them; a student run does not)")
    ids = z["ids"].astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{npz}: repeated ids")
    return pd.Series(z["labels"].astype(np.int64), index=ids)


def scores_log_loss(npz, labels: pd.Series) -> float:
    """Test log-loss (nats) of a run's stored test logits (test_scores.npz: ids, logits; single logits as
    P(positive), K-class logits by softmax, at T = 1: kdlib.metrics.probabilities) on `labels` (by id,
    e.g. `stored_test_labels`), with scikit-learn's log_loss. Every id of the run must have a label."""
    from sklearn.metrics import log_loss

    from .metrics import probabilities

    z = np.load(npz)
    ids = z["ids"].astype(np.int64)
    missing = ~np.isin(ids, labels.index.to_numpy())
    if missing.any():
        raise ValueError(f"{npz}: {int(missing.sum())} ids without a label")
    probs = probabilities(z["logits"].astype(np.float64))
    k = 2 if probs.ndim == 1 else probs.shape[1]
    return float(log_loss(labels.loc[ids].to_numpy(), probs, labels=list(range(k))))


# ---- the best model within each latency budget ----------------------------------------------------------
def best_within_budgets(frontier: pd.DataFrame, budgets, latency: str = "ms_batch1", score: str = "accuracy") -> pd.DataFrame:
    """Per latency budget, the most accurate model that fits it: one row per budget, in the order given, with
    `budget` (in `latency`'s unit), the `model` and `family` (columns of `frontier`), its `score` and its `latency`.

    A model fits a budget when its `latency` is at most the budget; of the models that fit, the highest `score`
    wins, equal scores going to the lower latency (then to the earlier row of `frontier`). A model without a
    latency or a score (NaN: not timed, not scored) fits no budget. A budget that no model fits gets a row with
    model, family and numbers missing (NA)."""
    missing = {"model", "family", latency, score} - set(frontier.columns)
    if missing:
        raise ValueError(f"the frontier has no column {sorted(missing)}")
    if latency == score:
        raise ValueError(f"latency and score are one column ({latency!r})")
    columns = ["budget", "model", "family", score, latency]
    ok = frontier[frontier[latency].notna() & frontier[score].notna()]
    ok = ok.iloc[np.lexsort((np.arange(len(ok)), ok[latency].to_numpy(float), -ok[score].to_numpy(float)))]
    rows = []
    for b in budgets:
        fits = ok[ok[latency] <= b]
        if len(fits):
            r = fits.iloc[0]
            rows.append({"budget": b, "model": r["model"], "family": r["family"], score: float(r[score]), latency: float(r[latency])})
        else:
            rows.append({"budget": b, "model": None, "family": None, score: np.nan, latency: np.nan})
    return pd.DataFrame(rows, columns=columns)
