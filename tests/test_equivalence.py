"""workflow/equivalence.py: what it compares bit for bit, what it leaves out, which runs it re-keys."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
import equivalence  # noqa: E402

OLD = {"kdlib_code": "aaaaaaaaaaaa", "notebook": "bbbbbbbbbbbb"}
NEW = {"kdlib_code": "cccccccccccc", "notebook": "dddddddddddd"}


def _record(test_acc=0.8, seconds=1.0, code=OLD, notebook="student"):
    return {"name": "r", "test": {"accuracy": test_acc}, "train_seconds": seconds,
            "history": {"epochs": [{"train_loss": 0.5, "seconds": seconds}]},
            "provenance": {"kdlib_code": code["kdlib_code"], "notebook": {"name": notebook, "hash": code["notebook"]}}}


def test_strip_leaves_out_only_the_fields_that_measure_time():
    rec = equivalence.strip(_record())
    assert rec == {"name": "r", "test": {"accuracy": 0.8}, "history": {"epochs": [{"train_loss": 0.5}]}}


def test_same_file_compares_numbers_bit_for_bit(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_record(seconds=1.0)))
    b.write_text(json.dumps(_record(seconds=9.0, code=NEW)))  # other timing, other code version: the same
    assert equivalence.same_file(a, b) is None
    b.write_text(json.dumps(_record(test_acc=float(np.nextafter(0.8, 1)))))  # one ulp more
    assert "test" in equivalence.same_file(a, b)
    x, y = tmp_path / "x.npz", tmp_path / "y.npz"
    np.savez_compressed(x, logits=np.array([0.25, 0.5], dtype=np.float16), ids=np.arange(2))
    np.savez_compressed(y, logits=np.array([0.25, 0.5], dtype=np.float16), ids=np.arange(2))
    assert equivalence.same_file(x, y) is None  # the zip's dates differ, the arrays do not
    np.savez_compressed(y, logits=np.array([0.25, 0.5], dtype=np.float32), ids=np.arange(2))
    assert "logits" in equivalence.same_file(x, y)  # same values, other dtype
    np.savez_compressed(y, logits=np.array([0.25, np.nextafter(np.float16(0.5), np.float16(1))], dtype=np.float16),
                        ids=np.arange(2))
    assert "logits" in equivalence.same_file(x, y)


def test_compare_names_the_files_that_differ_or_exist_once(tmp_path):
    for side, acc in (("old", 0.8), ("new", 0.7)):
        run = tmp_path / side / "results" / "runs" / "r"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(_record(test_acc=acc)))
    (tmp_path / "new" / "results" / "extra.md").write_text("x")  # written by the new code only: added
    (tmp_path / "old" / "results" / "gone.md").write_text("x")   # no longer written: a difference
    out = equivalence.compare(tmp_path / "old", tmp_path / "new")
    assert out["files"] == 3 and set(out["differ"]) == {"results/runs/r/metrics.json", "results/gone.md"}
    assert out["differ"]["results/gone.md"] == "only in old" and out["added_files"] == ["results/extra.md"]


def test_added_fields_and_columns_are_taken_out_of_the_new_side_only(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_record()))
    new = _record()
    new["params"] = {"select_by": "last"}
    new["history"]["epochs"][0]["val_lu_auc"] = 0.7
    b.write_text(json.dumps(new))
    assert "params" in equivalence.same_file(a, b)  # not declared: a difference
    assert equivalence.same_file(a, b, added=("params", "val_lu_auc")) is None
    b.write_text(json.dumps({**new, "test": {"accuracy": 0.7}}))
    assert "test" in equivalence.same_file(a, b, added=("params", "val_lu_auc"))  # the old numbers still compared
    a.write_text(json.dumps(new))  # the old side holds a field declared as added: not an addition
    assert "already holds" in equivalence.same_file(a, b, added=("val_lu_auc",))
    x, y = tmp_path / "x.csv", tmp_path / "y.csv"
    x.write_text("epoch,roc_auc\n1,0.5\n")
    y.write_text("epoch,roc_auc,val_pu_risk\n1,0.5,0.3\n")
    assert "columns differ" in equivalence.same_file(x, y)
    assert equivalence.same_file(x, y, added=("val_pu_risk",)) is None
    y.write_text("epoch,roc_auc,val_pu_risk\n1,0.6,0.3\n")
    assert "roc_auc" in equivalence.same_file(x, y, added=("val_pu_risk",))


@pytest.fixture
def committed(tmp_path, monkeypatch):
    """A results/ tree of three runs and the evidence of an identical check of student and latency."""
    runs = tmp_path / "results" / "runs"
    for name, code, nb in (("s0", OLD, "student"), ("s1", {"kdlib_code": "eeeeeeeeeeee", "notebook": "ffffffffffff"},
                                                                 "student"), ("latency", OLD, "latency")):
        (runs / name).mkdir(parents=True)
        (runs / name / "metrics.json").write_text(json.dumps(_record(code=code, notebook=nb), indent=1))
    evidence = tmp_path / "results" / "equivalence" / "old-new.json"
    evidence.parent.mkdir(parents=True)
    evidence.write_text(json.dumps({"identical": True, "new": "n" * 40, "differ": {},
                                    "notebooks": {"student": {"old": OLD, "new": NEW}, "latency": {"old": OLD, "new": NEW}}}))
    monkeypatch.setattr(equivalence, "ROOT", tmp_path)
    monkeypatch.setattr(equivalence, "hashes", lambda tree: {"student": NEW, "latency": NEW})
    return runs, evidence


def test_rekey_moves_only_runs_made_by_the_old_code_and_never_timings(committed):
    runs, evidence = committed
    before = {p.parent.name: p.read_text() for p in runs.rglob("metrics.json")}
    assert equivalence.rekey(str(evidence)) == 0
    s0 = json.loads((runs / "s0" / "metrics.json").read_text())
    assert s0["provenance"]["kdlib_code"] == NEW["kdlib_code"] and s0["provenance"]["notebook"]["hash"] == NEW["notebook"]
    assert s0["provenance"]["rekeyed"] == [{"from": OLD, "evidence": "results/equivalence/old-new.json"}]
    assert {k: v for k, v in s0.items() if k != "provenance"} == {k: v for k, v in _record().items() if k != "provenance"}
    # made by other code than the old commit's, or a timing: left for a rerun
    assert (runs / "s1" / "metrics.json").read_text() == before["s1"]
    assert (runs / "latency" / "metrics.json").read_text() == before["latency"]


def test_rekey_refuses_a_difference_or_another_checkout(committed, monkeypatch):
    runs, evidence = committed
    before = {p: p.read_text() for p in runs.rglob("metrics.json")}
    ev = json.loads(evidence.read_text())
    evidence.write_text(json.dumps({**ev, "identical": False, "differ": {"results/x.json": "json differs: test"}}))
    assert equivalence.rekey(str(evidence)) == 1
    evidence.write_text(json.dumps(ev))
    monkeypatch.setattr(equivalence, "hashes", lambda tree: {"student": OLD, "latency": NEW})
    assert equivalence.rekey(str(evidence)) == 1
    assert {p: p.read_text() for p in runs.rglob("metrics.json")} == before


def test_tables_and_texts_are_compared_without_timings_code_versions_or_checkpoint_keys(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("name,accuracy,train_seconds,finished,code_version\nr,0.8125,3.5,17.0,kdlib aaaaaaaaaaaa\n")
    b.write_text("name,accuracy,train_seconds,finished,code_version\nr,0.8125,9.1,18.0,kdlib cccccccccccc\n")
    versions = {OLD["kdlib_code"], NEW["kdlib_code"]}
    assert equivalence.same_file(a, b, versions) is None
    assert equivalence.same_file(a, b) is not None  # the code versions differ when not named
    b.write_text("name,accuracy,train_seconds,finished,code_version\nr,0.81250001,9.1,18.0,kdlib cccccccccccc\n")
    assert "accuracy" in equivalence.same_file(a, b, versions)
    x, y = tmp_path / "x.md", tmp_path / "y.md"
    x.write_text("cache/teacher/ckpt-0123456789ab/best.pt: 0.91 (kdlib aaaaaaaaaaaa)")
    y.write_text("cache/teacher/ckpt-ba9876543210/best.pt: 0.91 (kdlib cccccccccccc)")
    assert equivalence.same_file(x, y, versions) is None
    y.write_text("cache/teacher/ckpt-ba9876543210/best.pt: 0.92 (kdlib cccccccccccc)")
    assert equivalence.same_file(x, y, versions) == "text differs"


def test_a_renamed_parameter_is_compared_under_its_new_name_and_renamed_where_rekeyed(committed, tmp_path):
    runs, evidence = committed
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"params": {"alpha": 0.5, "beta": 0.5}, "setting": "α=0.5 β=0.5"}))
    b.write_text(json.dumps({"params": {"alpha": 0.5, "label_share": 0.5}, "setting": "α=0.5 label_share=0.5"}))
    assert equivalence.same_file(a, b) is not None
    assert equivalence.same_file(a, b, (), {"beta": "label_share"}, {"β=": "label_share="}) is None
    s0 = runs / "s0"
    rec = json.loads((s0 / "metrics.json").read_text())
    (s0 / "metrics.json").write_text(json.dumps({**rec, "params": {"alpha": 0.5, "beta": 0.5, "seed": 0}}, indent=1))
    (s0 / "params.json").write_text(json.dumps({"alpha": 0.5, "beta": 0.5, "seed": 0}, indent=1))
    evidence.write_text(json.dumps({**json.loads(evidence.read_text()), "renames": {"beta": "label_share"}}))
    assert equivalence.rekey(str(evidence)) == 0
    assert list(json.loads((s0 / "metrics.json").read_text())["params"]) == ["alpha", "label_share", "seed"]
    assert json.loads((s0 / "params.json").read_text()) == {"alpha": 0.5, "label_share": 0.5, "seed": 0}


def test_timings_written_into_sentences_are_written_alike():
    a = "teacher fine-tune teacher 12 min; 8 student runs, 0.5 core-hours. Wall clock of the whole IMDB study 0.1 h"
    b = "teacher fine-tune teacher 14 min; 8 student runs, 0.7 core-hours. Wall clock of the whole IMDB study 0.0 h"
    assert equivalence.normal(a) == equivalence.normal(b) and "0.91" in equivalence.normal("accuracy 0.91")


def test_a_chain_of_evidence_must_link_and_end_at_the_checkout(committed):
    runs, evidence = committed
    first = json.loads(evidence.read_text())
    step1 = evidence.with_name("a.json")
    step1.write_text(json.dumps({**first, "old": "o" * 40, "new": "x" * 40,
                                 "notebooks": {"student": {"old": OLD, "new": {"kdlib_code": "1" * 12, "notebook": "2" * 12}}}}))
    step2 = evidence.with_name("b.json")
    step2.write_text(json.dumps({**first, "old": "y" * 40, "new": "n" * 40,
                                 "notebooks": {"student": {"old": {"kdlib_code": "1" * 12, "notebook": "2" * 12}, "new": NEW},
                                               "latency": {"old": OLD, "new": NEW}}}))
    assert equivalence.rekey(str(step1), str(step2)) == 1  # x... != y...: not a chain
    step2.write_text(json.dumps({**json.loads(step2.read_text()), "old": "x" * 40}))
    assert equivalence.rekey(str(step1), str(step2)) == 0
    s0 = json.loads((runs / "s0" / "metrics.json").read_text())["provenance"]
    assert s0["kdlib_code"] == NEW["kdlib_code"] and [r["evidence"] for r in s0["rekeyed"]] == [
        "results/equivalence/a.json", "results/equivalence/b.json"]
