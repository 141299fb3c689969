"""Teachers' logits, kept beside their runs so that a fresh clone's students need no teacher rerun.

Keeps a copy of each teacher-logits file a run names beside the run (results/runs/<run>/logits/,
committed with it) and puts the copies back into a cache that lacks them; a copy and a cached file of
one name that differ are an error. The logic is kdlib.kept_logits.sync (importing kdlib restores too,
for notebooks opened by hand).

The workflow runs it before and after every invocation (workflow/Snakefile: onstart, onsuccess,
onerror); by hand:

    python workflow/cached_logits.py     # copy each way whatever is missing; print what it did
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kdlib import kept_logits, paths  # noqa: E402  (stdlib only)

if __name__ == "__main__":
    try:
        done = kept_logits.sync(paths.RESULTS, paths.cache_dir())
        done["restored"] = kept_logits.RESTORED + done["restored"]  # importing kdlib restores first
    except ValueError as e:
        raise SystemExit(str(e)) from None
    for what, files in done.items():
        if files:
            print(f"cached_logits: {what} {len(files)} file(s): " + ", ".join(Path(f).name for f in files))
