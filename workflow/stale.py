"""Which finished runs were made with other parameters than config/study.yaml declares, or by other
code than the checkout's (their notebook, or the kdlib code it uses).

Snakemake reruns a run whose parameters changed only when it has its own record of the last run
(.snakemake/, never committed): in a fresh clone it trusts every result that exists. This reads
the parameters each run recorded in its metrics.json instead, and lists the runs that disagree
with the config (and those not run yet), with the command that reruns them. It never fails.

    python workflow/stale.py [config/study.yaml]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kinds  # noqa: E402
import study  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kdlib.provenance import code_hash, notebook_hash  # noqa: E402

EARLIER = "unrecorded (earlier pipeline)"


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def differences(declared: dict, recorded: dict) -> dict:
    """Parameters both hold with other values: name -> (declared, recorded). threads 0 (torch's
    default) matches any count: a run records the count it resolved to."""
    return {k: (v, recorded[k]) for k, v in declared.items()
            if k in recorded and not _same(v, recorded[k]) and not (k == "threads" and _same(v, 0))}


def check(config: dict, root: Path) -> dict:
    """{rule: {"stale": {run: differences}, "missing": [runs]}} over every declared run."""
    s = study.Study(config)
    # every kind of run in the registry whose runs record their parameters (workflow/kinds.py)
    tables = {" ".join(k.rules): (k.notebook, {n: (p, k.path(n)) for n, p in k.table(s).items()})
              for k in kinds.KINDS.values() if k.stale}
    out = {}
    for rule, (notebook, runs) in tables.items():
        code = {"kdlib code": code_hash(notebook), "notebook": notebook_hash(notebook)}
        stale, missing = {}, []
        for n, (p, path) in runs.items():
            f = root / path
            if not f.exists():
                missing.append(n)
                continue
            rec = json.loads(f.read_text())
            d = differences(p, rec.get("params", {}))
            prov = rec.get("provenance") or {}
            made = {"kdlib code": prov.get("kdlib_code") or prov.get("kdlib_sources") or EARLIER, "notebook": (prov.get("notebook") or {}).get("hash", EARLIER)}
            # made by other code (or before runs recorded it)
            d.update({k: (code[k], made[k]) for k in code if made[k] != code[k]})
            if d:
                stale[n] = d
        out[rule] = {"stale": stale, "missing": missing}
    return out


def main(argv):
    cfg = Path(argv[1]) if len(argv) > 1 else Path("config/study.yaml")
    root = cfg.resolve().parent.parent
    for rule, r in check(study.load(cfg), root).items():
        if r["stale"]:
            print(f"{rule}: {len(r['stale'])} finished runs disagree with {cfg} (recorded vs declared):")
            for n, d in list(r["stale"].items())[:5]:
                print(f"  {n}: " + ", ".join(f"{k} {rec!r} -> {dec!r}" for k, (dec, rec) in d.items()))
            if len(r["stale"]) > 5:
                print(f"  ... and {len(r['stale']) - 5} more")
            print(f"  Snakemake has no record of them in a fresh checkout: rerun with `snakemake --forcerun {rule}`"
                  " (every run of the rule) or remove their folders.")
        if r["missing"]:
            print(f"{rule}: {len(r['missing'])} declared runs not run yet, e.g. {r['missing'][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
