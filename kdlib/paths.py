"""Every path of the study, anchored at the repository root.

papermill runs a kernel in the folder it was launched from and nbval in the notebook's own
folder, so nothing in the study uses a relative path: everything goes through this module.

Settings (environment variables):
    KDLIB_ROOT   the repository root (default: the folder above this package, or the current
                 folder when kdlib was installed without its repository, e.g. on Colab)
    KDLIB_DATA   the offline data folder (default: ../shared/data from the root, when it exists)
    KDLIB_CACHE  caches of long steps: token ids, teacher checkpoints and logits (default: ROOT/cache)
    KDLIB_RESULTS where runs write results (default: ROOT/results; the smoke tests use build/smoke)
"""
from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path


def _find_root() -> Path:
    if os.environ.get("KDLIB_ROOT"):
        return Path(os.environ["KDLIB_ROOT"]).resolve()
    here = Path(__file__).resolve().parents[1]
    if (here / "pyproject.toml").exists() and (here / "kdlib").is_dir():
        return here
    return Path.cwd().resolve()


ROOT = _find_root()
RESULTS = Path(os.environ.get("KDLIB_RESULTS", ROOT / "results")).resolve()
NOTEBOOKS = ROOT / "notebooks"


def cache_dir() -> Path:
    """Folder for cached artifacts (token ids, teacher checkpoints, teacher logits)."""
    path = Path(os.environ.get("KDLIB_CACHE", ROOT / "cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(required: bool = True) -> Path | None:
    """The offline data folder: $KDLIB_DATA, else ../shared/data beside the repo root.

    Raises FileNotFoundError with the places looked at when `required` and nothing is found.
    """
    if os.environ.get("KDLIB_DATA"):
        path = Path(os.environ["KDLIB_DATA"]).expanduser().resolve()
        if path.is_dir() or not required:
            return path if path.is_dir() else None
        raise FileNotFoundError(
            f"KDLIB_DATA={os.environ['KDLIB_DATA']} is not a folder; point it at the folder "
            "holding imdb/ and splice/ (see README.md, 'Data')."
        )
    path = (ROOT.parent / "shared" / "data").resolve()
    if path.is_dir():
        return path
    if required:
        raise FileNotFoundError(
            f"No offline data folder: {path} does not exist and KDLIB_DATA is not set. "
            "Set KDLIB_DATA to the folder holding imdb/{train,test}.parquet and "
            "splice/splice.parquet, or run where the Hugging Face hub is reachable."
        )
    return None


def run_dir(*parts: str) -> Path:
    """results/runs/<parts...>, created."""
    path = RESULTS.joinpath("runs", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """True when the Hugging Face hub answers; False at once when offline is requested.

    The answer is cached, and when the hub cannot be reached HF_HUB_OFFLINE and
    HF_DATASETS_OFFLINE are set, so later hub calls fail fast instead of waiting on time-outs.
    """
    offline = any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))
    ok = False
    if not offline:
        try:
            with socket.create_connection(("huggingface.co", 443), timeout=timeout):
                ok = True
        except OSError:
            ok = False
    if not ok:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    return ok
