"""Repository-level checks: pins agree, Colab copies match their jupytext sources."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    return dict(re.match(r"\s*-?\s*([A-Za-z0-9_.-]+)==(\S+)", l).groups() for l in lines
                if re.match(r"\s*-?\s*[A-Za-z0-9_.-]+==", l))


def test_environment_yml_has_the_same_pins_as_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert req, "no pins found in requirements.txt"
    missing = {k: v for k, v in req.items() if env.get(k) != v}
    assert not missing, f"environment.yml disagrees with requirements.txt on {missing}"
    assert env.get("torch") == "2.13.0"


@pytest.mark.parametrize("py", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_and_a_current_colab_copy(py):
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(py)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{py.name} needs exactly one cell tagged parameters"
    colab = ROOT / "notebooks" / "colab" / f"{py.stem}.ipynb"
    assert colab.exists(), f"{colab} missing: run `make colab`"
    sources = [c.source for c in jupytext.read(colab).cells]
    assert sources == [c.source for c in nb.cells], f"{colab.name} is stale: run `make colab`"


def test_committed_teacher_logits_are_exactly_those_their_runs_name():
    """A fresh clone restores every teacher's logits from the copies kept beside its run (so each file
    a committed run names is there), and keeps no copy that no run names (a superseded checkpoint's)."""
    from kdlib import kept_logits
    results = ROOT / "results"
    named = {kept for kept, _ in kept_logits.logit_files(results)}
    assert named, "no committed teacher names its logits"
    assert sorted(str(k.relative_to(results)) for k in named if not k.exists()) == []
    kept = {p for p in (results / "runs").rglob("logits/*") if p.is_file()}
    assert sorted(str(p.relative_to(results)) for p in kept - named) == []
