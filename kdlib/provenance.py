"""What made a run: the code, the notebook, the inputs and the teacher, as content hashes.

Every run records `record(...)` beside its metrics, and keys its checkpoint folder with
`run_key(...)`, so a finished checkpoint made by other code, parameters or inputs is never reused
silently. Paths are written relative to the repository root (`rel`), never as machine paths.

The workflow (workflow/Snakefile) computes the same `source_hash()` and `notebook_hash()` and
passes them to its rules as parameters: a change of kdlib or of a notebook reruns the runs that
depend on it, and only those.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

from . import paths

PACKAGE = Path(__file__).resolve().parent


def _sha1_files(files, root: Path) -> str:
    h = hashlib.sha1()
    for f in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def source_hash() -> str:
    """sha1 (12 hex) of kdlib's sources: every kdlib/*.py, by name and content."""
    return _sha1_files(PACKAGE.glob("*.py"), PACKAGE)


def file_hash(path: str | Path) -> str:
    """sha1 (12 hex) of a file's bytes, or of a folder's files (by relative name and content)."""
    path = Path(path)
    if path.is_dir():
        return _sha1_files([p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts], path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot hash {path}: no such file or folder")
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def notebook_hash(name: str) -> str:
    """sha1 (12 hex) of the jupytext source notebooks/<name>.py (what papermill runs is made from it)."""
    return file_hash(paths.NOTEBOOKS / f"{name}.py")


def rel(path: str | Path) -> str:
    """`path` relative to the repository root; outside it, relative to the data folder
    (``<data>/...``) or named by its last two parts (``<external>/parent/name``): never a
    machine's absolute path."""
    path = Path(path).resolve()
    if path.is_relative_to(paths.ROOT):
        return path.relative_to(paths.ROOT).as_posix()
    data = paths.data_dir(required=False)
    if data is not None and path.is_relative_to(data):
        return "<data>/" + path.relative_to(data).as_posix()
    return "<external>/" + "/".join(path.parts[-2:])


def run_key(*parts) -> str:
    """A short hash of the code version and `parts` (parameters, input hashes): the name of a run's
    checkpoint folder, so that a checkpoint made by other code or inputs is never resumed from."""
    blob = json.dumps([source_hash(), *parts], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def record(notebook: str, inputs: dict | None = None, teacher: dict | None = None, **extra) -> dict:
    """The provenance block of a run: kdlib's source hash, the notebook's hash, the hashes of its
    inputs (name -> hash), the resolved teacher (name, path relative to the root, weights hash),
    library versions, and anything in `extra` (e.g. the determinism settings)."""
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for lib in ("transformers", "numpy", "sklearn"):
        try:
            versions[lib] = __import__(lib).__version__
        except ImportError:  # pragma: no cover - optional
            pass
    return {"kdlib_sources": source_hash(), "notebook": {"name": notebook, "hash": notebook_hash(notebook)},
            "inputs": dict(inputs or {}), "teacher": teacher, "versions": versions, **extra}


def set_determinism(device) -> dict:
    """Make this process's training repeat exactly on `device`, and say how.

    CPU kernels are deterministic already; on CUDA this sets cuBLAS's workspace, turns
    ``torch.use_deterministic_algorithms`` on and cuDNN's benchmark off. The returned dict goes in
    the run's record."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return {"device": str(device), "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
