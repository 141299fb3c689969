"""Write scripts/install_cell.py into the install cell of every notebooks/*.py (then run `make colab`).

The install cell is the one titled "# %% Install kdlib ..."; it is created right after the
parameters cell when a notebook has none. tests/test_notebook_params.py checks they all match.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TITLE = "# %% Install kdlib when this notebook is opened on its own (Colab, Jupyter)"


def write(py: Path, snippet: str) -> bool:
    text = py.read_text()
    cell = f"{TITLE}\n{snippet.rstrip()}\n\n"
    m = re.search(r"^# %% Install kdlib.*?\n(?=^# %%)", text, flags=re.S | re.M)
    if m:
        new = text[:m.start()] + cell + text[m.end():]
    else:  # after the parameters cell
        p = re.search(r'^# %% tags=\["parameters"\].*?\n(?=^# %%)', text, flags=re.S | re.M)
        if p is None:
            raise SystemExit(f"{py}: no parameters cell")
        new = text[:p.end()] + cell + text[p.end():]
    if new != text:
        py.write_text(new)
    return new != text


if __name__ == "__main__":
    snippet = (ROOT / "scripts" / "install_cell.py").read_text()
    changed = [py.name for py in sorted((ROOT / "notebooks").glob("*.py")) if write(py, snippet)]
    print("install cell written into", changed or "no notebook (all current)", file=sys.stderr)
