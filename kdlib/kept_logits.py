"""Teachers' logits kept beside their runs, and put back into a cache that lacks them.

A teacher run (teacher.py, teacher_kinds.py, teacher_snapshots.py) caches its logits under
KDLIB_CACHE and names each file in its metrics.json ("logits": split -> {"cache_path", ...}). The
cache is not in git: a fresh clone has the teacher's metrics.json but none of its logits. So a copy
of each file is kept in the run's folder, results/runs/<run>/logits/<file name>, and committed with
the run. A file's name carries the teacher checkpoint's hash and the split's data hash, so a copy is
the file its run recorded; a copy and a cached file of one name that differ are an error (nothing is
overwritten).

Importing kdlib calls `restore()`: every kept copy the cache lacks is put back, so a notebook opened
by hand on a fresh clone (Jupyter, Colab, papermill) finds its teacher's logits, as a Snakemake run
does. The workflow also saves each new cache file beside its run (`sync`, workflow/cached_logits.py,
before and after every invocation).

This module is part of no run's key: `kdlib.provenance` hashes the kdlib code a notebook reaches,
and no notebook reaches this one. It cannot change a number: it only copies the committed file that
a run names into the place that run named, where the cache lacks it.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import warnings
from pathlib import Path

from . import paths


def logit_files(results: Path, kept_only: bool = False):
    """(copy beside its run, path relative to the cache) of every logits file a run's metrics.json
    names; `kept_only`: only the runs that keep copies (a folder logits/ beside metrics.json)."""
    runs = results / "runs"
    if kept_only:
        found = sorted(d.parent / "metrics.json" for d in runs.rglob("logits") if d.is_dir())
    else:
        found = sorted(runs.rglob("metrics.json"))
    for metrics in found:
        if not metrics.is_file():
            continue
        logits = json.loads(metrics.read_text()).get("logits")
        if not isinstance(logits, dict):
            continue
        for entry in logits.values():
            if isinstance(entry, dict) and str(entry.get("cache_path", "")).endswith(".npz"):
                rel = Path(entry["cache_path"])
                yield metrics.parent / "logits" / rel.name, rel


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")  # per process: two runs may restore at once
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def sync(results: Path, cache: Path, save: bool = True) -> dict[str, list[str]]:
    """Put back each kept copy the cache lacks ("restored"). With `save` (the workflow), also keep a
    copy of each cached file a run names that has none yet ("saved"), and compare every pair: raises
    when a copy and a cached file of one name differ. Without it, nothing is read but what is copied."""
    done = {"saved": [], "restored": []}
    conflicts = []
    for kept, rel in logit_files(results, kept_only=not save):
        cached = cache / rel
        if kept.exists() and not cached.exists():
            _copy(kept, cached)
            done["restored"].append(str(cached))
        elif save and cached.exists() and not kept.exists():
            _copy(cached, kept)
            done["saved"].append(str(kept))
        elif save and cached.exists() and not filecmp.cmp(cached, kept, shallow=False):
            conflicts.append(f"{kept} and {cached}")
    if conflicts:
        raise ValueError("cached teacher logits differ from the copies kept with their runs "
                         "(same checkpoint and data hash, different numbers): " + "; ".join(conflicts))
    return done


def restore() -> list[str]:
    """Put the kept copies under paths.RESULTS that the cache (paths.cache_dir()) lacks back into it;
    the files restored. A file already cached is left as it is (the workflow compares the pairs).
    Never raises: a problem is a warning (the notebook that needs a missing file then says which run
    to make)."""
    if not (paths.RESULTS / "runs").is_dir():
        return []
    try:
        return sync(paths.RESULTS, paths.cache_dir(), save=False)["restored"]
    except (OSError, ValueError) as e:
        warnings.warn(f"kdlib could not restore the teachers' kept logits into the cache: {e}")
        return []


RESTORED = restore()  # what this import put back
