"""`make test-cluster`'s verdict: one run made through profiles/slurm equals the same run made locally.

    python scripts/cluster_compare.py <local run folder> <slurm run folder>

Every JSON file of the run (metrics.json: its parameters, the teacher's and every student's scores
on validation and test, the provenance record; params.json) is compared value by value, exactly:
the same code on the same data with the same seeds and one thread gives the same floats wherever it
runs. Only the fields in IGNORED may differ; they say when the run happened, nothing about what it
computed. Exit status 1, with every difference listed, when anything else differs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

# (file, path of keys) -> why it may differ between the two runs
IGNORED = {
    ("metrics.json", ("execution", "started")): "wall-clock time the notebook started",
    ("metrics.json", ("execution", "finished")): "wall-clock time it wrote its metrics",
}
# Nothing else is ignored: a run records no host name, SLURM job id or machine path (the notebook
# asserts that metrics.json holds no path of the checkout), and both runs see the same data folder.


def differences(a, b, path=()):
    """Every (path, a's value, b's value) where the two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from differences(a.get(k, "<missing>"), b.get(k, "<missing>"), path + (k,))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, path + (i,))
    elif a != b or type(a) is not type(b):
        yield path, a, b


def main(local: Path, slurm: Path) -> int:
    names = sorted(p.name for p in local.glob("*.json"))
    if not names or names != sorted(p.name for p in slurm.glob("*.json")):
        print(f"the runs wrote different files: {names} vs {sorted(p.name for p in slurm.glob('*.json'))}")
        return 1
    bad = []
    for name in names:
        a, b = (json.loads((d / name).read_text()) for d in (local, slurm))
        for path, x, y in differences(a, b):
            if (name, path) not in IGNORED:
                bad.append(f"  {name} {'.'.join(map(str, path))}: local {x!r}, slurm {y!r}")
    for (name, path), why in IGNORED.items():  # each ignored field is there on both sides
        for d in (local, slurm):
            obj = json.loads((d / name).read_text())
            for k in path:
                obj = obj.get(k, {}) if isinstance(obj, dict) else {}
            if obj == {}:
                bad.append(f"  {d / name}: no {'.'.join(path)} ({why}): IGNORED is out of date")
    if bad:
        print("the SLURM run differs from the local run:\n" + "\n".join(bad))
        return 1
    print(f"the SLURM run equals the local run: {', '.join(names)} (ignored: "
          + ", ".join(f"{n} {'.'.join(p)}" for n, p in IGNORED) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
