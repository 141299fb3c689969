"""Every report notebook runs to its end as it is opened: its own defaults, a fresh clone's state.

Each report reads the committed runs from a copy of results/ (a fresh clone has no cache: the
teachers' logits some reports read are the copies kept beside their runs, restored when kdlib is
imported) and writes its tables and figures into that copy; README.md, whose blocks a report writes
only from the repository's own results/, is left as it was. A report's own smoke parameters and
asserts also run on the smoke runs in `make test-full` (tests/test_smoke.py). ~2 minutes of one core.
"""
import pytest
from notebook_runs import DATA, ROOT, execute, fresh_clone

pytestmark = pytest.mark.skipif(not (DATA / "imdb").is_dir(), reason="needs the study's data in ../shared/data")
REPORTS = ["report", "budget_report", "layers_report", "multi_report", "rating_report", "pu_report"]


@pytest.fixture(scope="session")
def clone(tmp_path_factory):
    return fresh_clone(tmp_path_factory.mktemp("fresh_clone_reports"))


@pytest.mark.parametrize("stem", REPORTS)
def test_a_report_runs_to_the_end_with_its_defaults_on_a_fresh_clone(stem, clone):
    base, env = clone
    readme = (ROOT / "README.md").read_text()
    err = execute(stem, env, base)
    assert err is None, f"{err.ename}: {err.evalue}"
    assert (ROOT / "README.md").read_text() == readme
