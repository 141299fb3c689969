"""Running a notebook of notebooks/ from a test: through papermill, in an environment of its own.

Shared by tests/test_smoke.py (tiny parameters, to the end) and tests/test_as_opened.py,
tests/test_reports_as_opened.py (the notebooks' own defaults on a fresh clone's state)."""
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# one thread a kernel: pytest-xdist runs another test on the other core
QUIET = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}


def execute(stem: str, env: dict, out_dir: Path, name: str | None = None, parameters: dict | None = None,
            first_cell: str | None = None):
    """Run notebooks/<stem>.py (as <name>.ipynb in out_dir, with papermill `parameters`, after an
    injected `first_cell`) in a kernel whose environment is `env`. Returns the
    PapermillExecutionError a cell raised, or None when every cell ran."""
    import jupytext
    import nbformat
    import papermill

    nb = jupytext.read(ROOT / "notebooks" / f"{stem}.py")
    if first_cell:
        nb.cells.insert(0, nbformat.v4.new_code_cell(first_cell))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name or stem}.ipynb"
    nbformat.write(nb, path)
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        papermill.execute_notebook(str(path), str(out_dir / f"{name or stem}.out.ipynb"), parameters=parameters or {},
                                   cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_name="python3")
    except papermill.PapermillExecutionError as err:
        return err
    finally:
        os.environ.clear()
        os.environ.update(old)
    return None


def fresh_clone(base: Path) -> tuple[Path, dict]:
    """A fresh clone's state under `base`: the committed results/ (copied: notebooks write into it),
    an empty cache, the real data; and the environment that points a notebook there."""
    shutil.copytree(ROOT / "results", base / "results")
    return base, {**os.environ, **QUIET, "KDLIB_RESULTS": str(base / "results"),
                  "KDLIB_CACHE": str(base / "cache"), "KDLIB_DATA": str(DATA)}
