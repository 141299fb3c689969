"""Every run notebook from its first cell to its last, on tiny smoke parameters (never a result).

Each entry of FULL or QUICK runs notebooks/<entry up to the first "-">.py through papermill with the
parameters of notebooks/smoke/<entry>.yaml; a cell that raises fails the test (what `pytest
--nbval-lax` checks), and each notebook's last cell holds the asserts it is checked with. Results
and cache go to build/smoke/, the data is a small copy of ../shared/data (tests/smoke_data.py).
The entries run in this order, on one worker (pytest-xdist keeps a file on one worker: --dist
loadfile): later ones read earlier ones' results, and all students share one tiny teacher.

QUICK (what `make test` runs) holds one entry per branch of a notebook that matters, and every run
notebook runs to its end in one of them; `make test-full` (KDLIB_SMOKE=full) runs every entry, the
report notebooks on the smoke runs included, before a study is rerun. What each entry left out of
QUICK covers, and where that is covered now:
- teacher-rating, student-rating, student-rating-scratch, student-rating-binary(-x): the eight-class
  task. Its pieces: the star labels and splits (tests/test_classes.py), a MiniLM with eight classes
  (tests/test_models.py), a K-class student trained and validated and softmax KD (test_classes.py),
  the collapse of eight classes to P(positive) (test_classes.py); the study's rating runs'
  parameters pass the notebooks' checks (tests/test_notebook_params.py); rating_report runs to its
  end on the committed rating runs (tests/test_reports_as_opened.py).
- teacher-n48, teacher-n48-s1, teacher-n48-again, student-n48*, layer_student-n48, teacher_layers-n48:
  a teacher on 48 reviews and its students (the budget study) take teacher.py's and student.py's
  paths of `teacher` and `student-x`; checkpoint_run is a run name read like teacher_run.
- student-scratch, student, student-e2-scratch, student-e2: from scratch (student-steps, alpha 0)
  and KD (student-x, which adds a transfer set); the epoch loop, patience and the best epoch are
  tests/test_train.py's.
- student-hard, student-smoothed, student-smoothed_T, student-shuffled: the targets' loss terms
  (tests/test_controls.py) and the one line each that picks them; student-linear: a linear teacher's record, read as multi_student reads it
  (teacher_tfidf_lr is one of its teachers).
- student-emb_pca: the embedding table started from the teacher's word embeddings (PCA), the one
  `embeddings.init_embedding` call; its pieces, and the other emb_init values, in tests/test_emb_init.py.
- teacher_snapshots-1: the first snapshot of the run teacher_snapshots makes (it trains nothing more).
- multi_student-alone: one teacher alone, brought to the scale of a teacher it is not given.
- multi_student-x: a fused teacher's labels on the unlabelled pool joining train (`fusions.shared_pool`; the
  pool's rows in the objective), here with one teacher (the smoke teachers labelled pools of different sizes).
- multi_student-single/-vote/-stacking: each fusion (tests/test_fusion.py), through the one
  `fusions.fuse` call that multi_student makes for mean_probs.
- layer_student, layer_student-none: the MSE hint (tests/test_layers.py) and no hint, beside
  layer_student-probe's cosine hint on the probe's layers; what layer_student's defaults need on a
  fresh clone: tests/test_as_opened.py.
- transformer_student-ft: alpha = 0 and no hidden term, two weights at 0 in transformer_student.
- online_pu-methods: VPU (its MixUp on the scores) for teacher and student, the Elkan-Noto prior times 1.5 and
  the PU-risk criterion on that prior; the losses by hand and the new kinds in the online loop, repeated and
  resumed (tests/test_pu_methods.py, tests/test_pu_select_run.py), the estimate on SCAR tokens (test_pu_methods.py).
- online_pu-offline: an offline student taught by the teacher of the meta-epoch lu_auc picks (offline_teacher
  "selected", issue 55.6), the candidates read back from the teacher cache; the teacher of a given meta-epoch, the
  pick and the default offline run bit for bit with the code before it: tests/test_pu_offline.py. Its setting is
  online_pu-reference's, so pu_report's "online vs offline, the teacher held fixed" has a seed pair to compare.
- online_pu-reference: imbalanced nnPU chosen by lu_auc beside online_pu-select, so that pu_report's method
  comparison has a reference on the smoke runs (the same notebook path as online_pu-select).
- online_pu-sar: the SAR labelling (labelled positives drawn with a propensity rising with the GC share), train
  and validation alike, in its own pu_report group; the draw, its errors and the SCAR default unchanged bit for bit
  (tests/test_pu_sar.py), the notebook's SAR checks (tests/test_notebook_params.py). Its setting is
  online_pu-reference's, so pu_report's "What a biased labelling costs" has a SCAR twin to pair it with.
- online_pu-supervised: the supervised teacher and student chosen by lu_auc in online_pu-reference's setting, so
  that pu_report's "A PU teacher that does not collapse" (issue 55.2) has its reference beside
  online_pu-select's teacher fixes (the same notebook path as online_pu-reference, loss supervised).
- choose, choose-kd and the six reports: run to the end on the committed runs, with their defaults
  (tests/test_as_opened.py, tests/test_reports_as_opened.py), instead of on the smoke runs.
"""
import os
import shutil

import pytest
from notebook_runs import DATA, QUIET, ROOT, execute

BUILD = ROOT / "build" / "smoke"

FULL = ["teacher", "teacher-rating", "teacher-n48", "teacher-n48-s1", "teacher-n48-again", "teacher_kinds-tfidf_lr",
        "teacher_kinds-nbsvm", "teacher_kinds-bigru", "teacher_snapshots", "teacher_snapshots-1", "student-scratch",
        "student", "student-rating", "student-rating-scratch", "student-rating-binary", "student-rating-binary-x",
        "student-e2-scratch", "student-e2", "student-x", "student-hard", "student-smoothed", "student-smoothed_T",
        "student-shuffled", "student-emb_pca", "student-steps", "student-linear", "student-n48-scratch", "student-n48",
        "student-n48-x", "choose", "choose-kd", "report", "budget_report", "teacher_layers", "teacher_layers-n48",
        "layer_student", "layer_student-probe", "layer_student-none", "layer_student-n48", "transformer_student",
        "transformer_student-ft", "latency", "layers_report", "multi_student", "multi_student-single",
        "multi_student-alone", "multi_student-vote", "multi_student-stacking", "multi_student-mimic", "multi_student-x",
        "multi_report", "splice_classes", "rating_report", "online_pu", "online_pu-select", "online_pu-offline",
        "online_pu-reference", "online_pu-methods", "online_pu-sar", "online_pu-supervised", "pu_report", "distill"]
QUICK = ["teacher", "teacher_kinds-tfidf_lr", "teacher_kinds-nbsvm", "teacher_kinds-bigru", "teacher_snapshots",
         "student-x", "student-steps", "teacher_layers", "layer_student-probe", "transformer_student", "latency",
         "multi_student", "multi_student-mimic", "multi_student-x", "splice_classes", "online_pu", "online_pu-select",
         "distill"]
ENTRIES = FULL if os.environ.get("KDLIB_SMOKE") == "full" else QUICK
pytestmark = pytest.mark.skipif(not (DATA / "imdb").is_dir(), reason="needs the study's data in ../shared/data")


def test_the_lists_name_smoke_files_in_run_order():
    files = {p.stem for p in (ROOT / "notebooks" / "smoke").glob("*.yaml")}
    assert set(FULL) == files and len(FULL) == len(set(FULL))
    assert [e for e in FULL if e in QUICK] == QUICK  # QUICK keeps FULL's order
    stems = {p.stem for p in (ROOT / "notebooks").glob("*.py")}
    run_notebooks = {s for s in stems if s != "choose" and not s.endswith("report")}
    assert run_notebooks <= {e.split("-")[0] for e in QUICK}  # every run notebook runs to its end


@pytest.fixture(scope="session")
def smoke_env():
    """build/smoke/results and cache made anew, once per worker; the small data copy kept (made once)."""
    import smoke_data

    for sub in ("results", "cache"):
        shutil.rmtree(BUILD / sub, ignore_errors=True)
    data = smoke_data.make(DATA, BUILD / "data")
    return {**os.environ, **QUIET, "KDLIB_RESULTS": str(BUILD / "results"), "KDLIB_CACHE": str(BUILD / "cache"),
            "KDLIB_DATA": str(data)}


@pytest.mark.parametrize("entry", ENTRIES)
def test_smoke(entry, smoke_env):
    import yaml

    params = yaml.safe_load((ROOT / "notebooks" / "smoke" / f"{entry}.yaml").read_text()) or {}
    err = execute(entry.split("-")[0], smoke_env, BUILD / "notebooks", name=entry, parameters=params)
    assert err is None, str(err)
