"""Every run notebook runs as it is opened: with its own defaults, on a fresh clone's state.

A fresh clone has the committed results/ (runs, and the teachers' logits kept beside their runs)
and no cache/. Each test runs one notebook through papermill with no parameters, on the real data
(../shared/data), with results in a copy of the committed results/ and an empty cache, as a reader
in Jupyter or Colab would:
- a run notebook (it would train for minutes to hours) until it starts: an injected first cell stops
  it at its first training forward pass (a torch module called in training mode with autograd on),
  at its first fit of a text vectoriser (the linear teachers) or, for latency.py, at its first timed
  model call; the test asserts that this stop, and nothing else, ended it;
- a run notebook whose input is not committed (a teacher's weights) until it says what to run;
- notebooks/choose.py to the end, reading the committed runs.
The reports: tests/test_reports_as_opened.py. Slow (~6 minutes of one core, most of it the
notebooks' own loading and tokenising of 100,000 reviews): pytest-xdist keeps a file on one worker
(--dist loadfile), so the token ids the first notebook caches serve the next.
"""
import pytest
from notebook_runs import DATA, ROOT, execute, fresh_clone

pytestmark = pytest.mark.skipif(not (DATA / "imdb").is_dir(), reason="needs the study's data in ../shared/data")

# how each run notebook starts: "train" (a module's forward in training mode with autograd), "forward"
# (any module's forward: latency.py times fresh models in eval mode), "fit" (a text vectoriser's fit)
STARTS = {"teacher": "train", "student": "train", "teacher_snapshots": "train", "transformer_student": "train",
          "multi_student": "train", "splice_classes": "train", "online_pu": "train", "teacher_kinds": "fit",
          "latency": "forward", "distill": "train"}
# run notebooks whose defaults need what a clone does not hold: (exception, words of its message).
# teacher_layers needs its teacher's weights, which only a rerun of that teacher makes (they are not
# committed); layer_student, even with layers "none", needs that probe run, layers_<teacher_run>
NEEDS = {"teacher_layers": ("FileNotFoundError", "checkpoints are not committed"),
         "layer_student": ("FileNotFoundError", "run teacher_layers.py on 'teacher' first")}

STOP_CELL = '''# injected by tests/test_as_opened.py: stop where this notebook's defaults start training
import torch

class TrainingStarted(Exception):
    pass

def _stop(module, args):
    if WHEN == "forward" or (WHEN == "train" and module.training and torch.is_grad_enabled()):
        raise TrainingStarted(f"{type(module).__name__} called ({WHEN})")

torch.nn.modules.module.register_module_forward_pre_hook(_stop)
if WHEN == "fit":
    from sklearn.feature_extraction import text as _text

    def _fit(self, *args, **kwargs):
        raise TrainingStarted(f"{type(self).__name__}.fit called")
    _text.CountVectorizer.fit = _text.CountVectorizer.fit_transform = _fit  # TfidfVectorizer's too
'''


def test_every_notebook_is_run_as_opened_here_or_with_the_reports():
    from test_reports_as_opened import REPORTS

    stems = {p.stem for p in (ROOT / "notebooks").glob("*.py")}
    assert stems == set(STARTS) | set(NEEDS) | set(REPORTS) | {"choose"}


@pytest.fixture(scope="session")
def clone(tmp_path_factory):
    """One fresh clone for this file's run notebooks (its cache fills as they run, as on one machine)."""
    return fresh_clone(tmp_path_factory.mktemp("fresh_clone"))


@pytest.mark.parametrize("stem", sorted(STARTS))
def test_a_run_notebook_starts_training_with_its_defaults_on_a_fresh_clone(stem, clone):
    base, env = clone
    err = execute(stem, env, base, first_cell=f"WHEN = {STARTS[stem]!r}\n" + STOP_CELL)
    assert err is not None, f"{stem} ran to its end: it should have been stopped when it started"
    assert err.ename == "TrainingStarted", f"{stem} failed before it started: {err.ename}: {err.evalue}"


@pytest.mark.parametrize("stem", sorted(NEEDS))
def test_a_run_notebook_whose_input_is_not_committed_says_what_to_run(stem, clone):
    base, env = clone
    err = execute(stem, env, base, first_cell="WHEN = 'train'\n" + STOP_CELL)  # it must not start either
    ename, words = NEEDS[stem]
    assert err is not None and err.ename == ename and words in err.evalue, err and f"{err.ename}: {err.evalue}"


def test_choose_runs_to_the_end_with_its_defaults_on_a_fresh_clone(tmp_path):
    """On a clone of its own: its defaults write a choice from one candidate over the committed
    results/choices/lr_gru.json, which the reports read."""
    base, env = fresh_clone(tmp_path)
    err = execute("choose", env, base)
    assert err is None, f"{err.ename}: {err.evalue}"
    assert (base / "results" / "choices" / "lr_gru.json").exists()
