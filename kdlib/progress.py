"""Progress bars: widgets in an interactive Jupyter kernel, plain text under papermill, nbval and scripts.

`tqdm.auto` draws a widget bar in every IPython kernel, also when papermill or nbval runs the
notebook, which then holds widget placeholders ("HBox(children=...)") and no readable progress. A
kernel can tell who drives it: papermill (through nbclient) and nbval send every execute request with
allow_stdin=False (nobody answers `input()`), while JupyterLab, Notebook, Colab and VS Code allow
input. Widgets need ipywidgets, a dependency of kdlib (Colab has it too).

KDLIB_PROGRESS=text or KDLIB_PROGRESS=widgets overrides the detection.
"""
from __future__ import annotations

import os
import sys

from tqdm.std import tqdm as _text_bar


def interactive() -> bool:
    """True in a Jupyter kernel whose current request comes from a frontend that takes input."""
    choice = os.environ.get("KDLIB_PROGRESS", "").strip().lower()
    if choice in ("text", "widgets"):
        return choice == "widgets"
    if "IPython" not in sys.modules:  # no kernel in a plain script, and no import cost there
        return False
    ip = sys.modules["IPython"].get_ipython()
    kernel = getattr(ip, "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))  # ipykernel sets it from each execute request


def tqdm(*args, **kwargs):
    """`tqdm.auto.tqdm` when `interactive()`, else the plain-text `tqdm.std.tqdm`; same arguments."""
    if interactive():
        from tqdm.auto import tqdm as bar
    else:
        bar = _text_bar
    return bar(*args, **kwargs)
