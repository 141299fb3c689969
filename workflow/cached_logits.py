"""Teachers' logits, kept beside their runs so that a fresh clone's students need no teacher rerun.

A teacher run (teacher.py, teacher_kinds.py, teacher_snapshots.py) caches its logits under
KDLIB_CACHE and names each file in its metrics.json ("logits": split -> {"cache_path", ...}). The
cache is not in git: a fresh clone has the teacher's metrics.json, so Snakemake does not rerun the
teacher, but none of its logits, so every student reading them would fail. This script keeps a
copy of each file in the run's folder, results/runs/<run>/logits/<file name>, which is committed
with the run, and puts the copies back into the cache where it lacks them. A file's name carries the
teacher checkpoint's hash and the split's data hash, so a copy is the file its run recorded; a copy
and a cached file of one name that differ are an error (nothing is overwritten).

The workflow runs it before and after every invocation (workflow/Snakefile: onstart, onsuccess,
onerror); by hand:

    python workflow/cached_logits.py     # copy each way whatever is missing; print what it did
"""
from __future__ import annotations

import filecmp
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kdlib import paths  # noqa: E402  (stdlib only)


def logit_files(results: Path):
    """(copy in the run's folder, cache path relative to the cache) of every run's logits."""
    for metrics in sorted((results / "runs").rglob("metrics.json")):
        logits = json.loads(metrics.read_text()).get("logits")
        if not isinstance(logits, dict):
            continue
        for entry in logits.values():
            if isinstance(entry, dict) and str(entry.get("cache_path", "")).endswith(".npz"):
                rel = Path(entry["cache_path"])
                yield metrics.parent / "logits" / rel.name, rel


def sync(results: Path, cache: Path) -> dict[str, list[str]]:
    done = {"saved": [], "restored": []}
    conflicts = []
    for kept, rel in logit_files(results):
        cached = cache / rel
        if cached.exists() and kept.exists():
            if not filecmp.cmp(cached, kept, shallow=False):
                conflicts.append(f"{kept} and {cached}")
            continue
        src, dst, what = (cached, kept, "saved") if cached.exists() else (kept, cached, "restored")
        if not src.exists():
            continue  # neither: the run that makes it has not run here (or its cache is gone)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
        done[what].append(str(dst))
    if conflicts:
        raise SystemExit("cached teacher logits differ from the copies kept with their runs "
                         "(same checkpoint and data hash, different numbers): " + "; ".join(conflicts))
    return done


if __name__ == "__main__":
    done = sync(paths.RESULTS, paths.cache_dir())
    for what, files in done.items():
        if files:
            print(f"cached_logits: {what} {len(files)} file(s): " + ", ".join(Path(f).name for f in files))
