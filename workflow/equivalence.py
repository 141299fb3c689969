"""Is a change a refactor? Run the same covering sample with the code of two commits, on this
machine, and compare every metric and stored score bit for bit; then re-key the committed runs.

    python workflow/equivalence.py run OLD [NEW]     # NEW: HEAD. Writes results/equivalence/<old>-<new>.json
        [--rename OLD=NEW ...] [--text OLD=>NEW ...] [--runs-only]   # a change that renames a parameter
        [--added NAME ...]                                            # a change that only adds fields
    python workflow/equivalence.py sample COMMIT     # only run one commit's sample (e.g. beside another)
    python workflow/equivalence.py rekey EVIDENCE... # re-key the runs EVIDENCE covers (identical only; a chain in order)
    (make equivalence OLD=<commit>, make rekey EVIDENCE=<file>)

The sample is every entry of tests/test_smoke.py's FULL list (every run notebook, every branch
a smoke entry exercises: teachers, student variants, fusions, layers, transformer, PU, splice,
the reports), at smoke size, each commit in a git worktree of its own under build/equiv/, with
the same Python environment, one thread per kernel. Left out of the comparison: fields that
measure time (VOLATILE, *_seconds, ms_*), the files whose numbers are timings (TIMED_FILES), and in
texts the code versions and checkpoint keys (named by the code version: they differ by design).

A change that only adds (a new parameter left at its default, a new field or log column, a new smoke
entry's run): `--added NAME` names each field or column only the new side may hold; it is taken out
of the new side before comparing (and is a difference if the old side holds it too). Files only the
new side writes are listed as added, not as differences: what the old code wrote must come out the
same, bit for bit; the committed runs keep their records (without the added fields) when re-keyed.

Why the same machine: a run repeats bit for bit on one machine, not across CPUs (another vector
instruction set, other float kernels, other last bits; docs/methods.md, "Same inputs, same numbers"). So
the evidence names the machine. A difference anywhere means the change is not a refactor:
nothing is re-keyed, and the runs of the notebooks it touches rerun.

`rekey` rewrites, in every committed run of a covered notebook whose recorded code version is the
old commit's, the two hashes of its code version (provenance.kdlib_code, provenance.notebook.hash)
to the new commit's, and appends {from, evidence} to provenance.rekeyed. Runs that measure time
(TIMED) are never re-keyed: they rerun.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "equiv"
EVIDENCE = ROOT / "results" / "equivalence"
# fields that measure time (or name the code version) and so differ between two runs of one code:
# these keys, any key ending in _seconds, any starting with ms_ (milliseconds)
VOLATILE = {"provenance", "execution", "executions", "started", "finished", "seconds_per_epoch", "latency", "seconds"}
TIMED = {"latency"}  # notebooks whose numbers are timings: rerun, never re-keyed
# files whose numbers include those timings (the latency frontier): not compared, said so in the evidence
TIMED_FILES = ("results/runs/latency/", "results/tables/frontier.", "results/layers.md", "results/tables/layers_findings.md")
# a checkpoint folder is named by the run's key, which holds the code version; so are a PU run's
# teacher cache (field teacher_cache) and the folder of its chosen models (models_key)
CHECKPOINT_KEY = re.compile(r"ckpt-[0-9a-f]{12}")
KEYED = {"teacher_cache", "models_key"}
# timings that report pages write into sentences (study 1's compute line): the number written alike
TIMED_TEXT = (re.compile(r"(Wall clock of the whole \w+ study )[\d.]+( h)"), re.compile(r"(teacher fine-tune \S+ )[\d.]+( min)"),
              re.compile(r"()[\d.]+( core-hours)"))
HEX_KEY = re.compile(r"[0-9a-f]{12}")
HASHES = """
import json, sys
from pathlib import Path
from kdlib import provenance
nbs = sorted(p.stem for p in (Path.cwd() / "notebooks").glob("*.py"))
print(json.dumps({n: {"kdlib_code": provenance.code_hash(n), "notebook": provenance.notebook_hash(n)} for n in nbs}))
"""


def git(*args, cwd=ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def worktree(commit: str) -> Path:
    """A checkout of `commit` under build/equiv/<commit>, with ../shared (the data) beside it."""
    BUILD.mkdir(parents=True, exist_ok=True)
    shared = BUILD / "shared"
    if not shared.exists():
        shared.symlink_to((ROOT.parent / "shared").resolve())
    tree = BUILD / commit[:12]
    if not tree.exists():
        git("worktree", "add", "--detach", str(tree), commit)
    return tree


def environment(tree: Path) -> dict:
    """Python imports kdlib from `tree` (PYTHONPATH comes before the editable install)."""
    return {**os.environ, "PYTHONPATH": str(tree), "KDLIB_SMOKE": "full", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_sample(tree: Path, machine: dict) -> Path:
    """The sample run with `tree`'s code (once per commit and machine: kept in build/smoke there)."""
    done = tree / "build" / "smoke" / "equivalence-done.json"
    if done.exists() and json.loads(done.read_text()) == machine:
        print(f"{tree.name}: sample already run on this machine")
        return tree / "build" / "smoke"
    print(f"{tree.name}: running the sample (tests/test_smoke.py, KDLIB_SMOKE=full) ...", flush=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "tests/test_smoke.py"],
                   cwd=tree, env=environment(tree), check=True)
    for folder in (tree / "build" / "smoke" / "cache").iterdir():  # checkpoints (GBs): compare reads only the logits
        if folder.is_dir() and folder.name != "teacher_logits":
            shutil.rmtree(folder)
    done.write_text(json.dumps(machine))
    return tree / "build" / "smoke"


def volatile(key: str) -> bool:
    return key in VOLATILE or key.endswith("_seconds") or key.startswith("ms_")


def strip(value, versions=(), renames=None, texts=None, added=()):
    """`value` without its volatile keys and the `added` ones, at any depth, its texts `normal`, and its keys
    renamed (`renames`: old name -> new, for a change that renames a parameter; the old side's only)."""
    renames = renames or {}
    if isinstance(value, dict):
        return {renames.get(k, k): HEX_KEY.sub("<key>", v) if k in KEYED and isinstance(v, str)
                else strip(v, versions, renames, texts, added) for k, v in value.items()
                if not volatile(k) and k not in added}
    if isinstance(value, list):
        return [strip(v, versions, renames, texts, added) for v in value]
    return normal(value, versions, texts) if isinstance(value, str) else value


def normal(text: str, versions=(), texts=None) -> str:
    """`text` with the code versions it names (`versions`: either commit's code hashes, as the
    reports print them) and checkpoint keys written alike, and `texts` (old -> new) replaced."""
    for v in versions:
        text = text.replace(v, "<code version>")
    for old, new in (texts or {}).items():
        text = text.replace(old, new)
    for pattern in TIMED_TEXT:
        text = pattern.sub(r"\1<time>\2", text)
    return CHECKPOINT_KEY.sub("ckpt-<key>", text)


def holds(value, keys) -> set:
    """The `keys` that occur in `value` (a JSON value) at any depth."""
    if isinstance(value, dict):
        return (set(value) & set(keys)).union(*[holds(v, keys) for v in value.values()])
    if isinstance(value, list):
        return set().union(*[holds(v, keys) for v in value])
    return set()


def same_file(a: Path, b: Path, versions=(), renames=None, texts=None, added=()) -> str | None:
    """None when `a` and `b` hold the same numbers bit for bit; else what differs. `renames` and
    `texts` (a renaming change) apply to `a`, the old side; `added` fields and columns are taken out of
    `b`, the new side (the old side must not hold them)."""
    if a.suffix == ".json":
        old_value = json.loads(a.read_text())
        if added and (there := holds(old_value, added)):
            return f"the old side already holds the added fields {sorted(there)}"
        x, y = strip(old_value, versions, renames, texts), strip(json.loads(b.read_text()), versions, added=added)
        return None if x == y else "json differs: " + ", ".join(
            k for k in sorted(set(x) | set(y)) if not isinstance(x, dict) or x.get(k) != y.get(k))[:300]
    if a.suffix in (".npz", ".npy"):
        x, y = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
        if a.suffix == ".npy":
            x, y = {"": x}, {"": y}
        if sorted(x) != sorted(y):
            return f"arrays {sorted(x)} vs {sorted(y)}"
        bad = [k for k in x if x[k].dtype != y[k].dtype or x[k].shape != y[k].shape or x[k].tobytes() != y[k].tobytes()]
        return f"arrays differ: {bad}" if bad else None
    if a.suffix == ".csv" and a.read_text().strip() and b.read_text().strip():  # a table: its timing columns left out
        import pandas as pd

        x, y = (pd.read_csv(f, dtype=str, keep_default_na=False) for f in (a, b))
        x = x.rename(columns=renames or {})
        if set(added) & set(x.columns):
            return f"the old side already holds the added columns {sorted(set(added) & set(x.columns))}"
        y = y.drop(columns=[c for c in y.columns if c in added])
        cols = [[c for c in t.columns if not volatile(c)] for t in (x, y)]
        if cols[0] != cols[1]:
            return f"columns differ: {sorted(set(cols[0]) ^ set(cols[1]))}"
        x, y = x[cols[0]].map(lambda v: normal(v, versions, texts)), y[cols[0]].map(lambda v: normal(v, versions))
        for c in KEYED & set(cols[0]):
            x[c], y[c] = x[c].str.replace(HEX_KEY, "<key>", regex=True), y[c].str.replace(HEX_KEY, "<key>", regex=True)
        return None if x.equals(y) else "table differs: " + ", ".join(c for c in cols[0] if not x[c].equals(y[c]))[:300]
    return None if normal(a.read_text(), versions, texts) == normal(b.read_text(), versions) else "text differs"


COMPARED = (".json", ".npz", ".npy", ".csv", ".md")


def compare(old: Path, new: Path, versions=(), renames=None, texts=None, runs_only=False, added=()) -> dict:
    """Every result and cached logit file of two sample runs: which differ (and which exist once);
    the files holding timings are listed, not compared. `runs_only`: the runs' records, scores
    and logits and the choices, not the reports' pages and tables (for a change that also changes
    a report: the report is regenerated on the committed runs and its tables diffed instead)."""
    files = {}
    subs = ("results/runs", "results/choices", "cache/teacher_logits") if runs_only else ("results", "cache/teacher_logits")
    for side, base in (("old", old), ("new", new)):
        for sub in subs:
            for f in (base / sub).rglob("*"):
                if f.is_file() and f.suffix in COMPARED and "figures" not in f.parts:
                    files.setdefault(f.relative_to(base).as_posix(), {})[side] = f
    timed = sorted(r for r in files if r.startswith(TIMED_FILES))
    out = {"files": len(files) - len(timed), "differ": {}, "added_files": [], "timings_not_compared": timed}
    for rel, sides in sorted(files.items()):
        if rel in timed:
            continue
        if set(sides) == {"new"}:  # written by the new code only: it adds, it changes nothing the old code wrote
            out["added_files"].append(rel)
        elif len(sides) < 2:
            out["differ"][rel] = f"only in {next(iter(sides))}"
        elif (why := same_file(sides["old"], sides["new"], versions, renames, texts, added)) is not None:
            out["differ"][rel] = why
    return out


def hashes(tree: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", HASHES], cwd=tree, env=environment(tree), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def this_machine() -> dict:
    sys.path.insert(0, str(ROOT))
    from kdlib.provenance import machine

    return machine()


def run(old: str, new: str = "HEAD", renames=None, texts=None, runs_only=False, added=()) -> Path:
    old, new = git("rev-parse", old), git("rev-parse", new)
    mach = this_machine()
    trees = {side: worktree(c) for side, c in (("old", old), ("new", new))}
    outs = {side: run_sample(t, mach) for side, t in trees.items()}
    code = {side: hashes(t) for side, t in trees.items()}
    versions = {h for table in code.values() for v in table.values() for h in v.values()}
    result = compare(outs["old"], outs["new"], versions, renames, texts, runs_only, added)
    notebooks = {n: {"old": code["old"][n], "new": code["new"].get(n)} for n in code["old"]}
    runs = sorted({json.loads(f.read_text()).get("provenance", {}).get("notebook", {}).get("name", "?") + ": " + f.parent.name
                   for f in (outs["new"] / "results" / "runs").rglob("metrics.json")})
    evidence = {"old": old, "new": new, "machine": mach, "identical": not result["differ"],
                "compared_files": result["files"], "differ": result["differ"], "added": sorted(added),
                "added_files": result["added_files"],
                "left_out": {"fields": sorted(VOLATILE) + ["*_seconds", "ms_*"], "timed_files": result["timings_not_compared"],
                             "texts": "code versions, checkpoint keys and the timings of TIMED_TEXT written alike",
                             "reports": "not compared (runs only): regenerated on the committed runs instead" if runs_only else "compared"},
                "renames": renames or {}, "text_renames": texts or {},
                "sample": "tests/test_smoke.py FULL at the new commit", "sample_runs": runs, "notebooks": notebooks}
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    path = EVIDENCE / f"{old[:12]}-{new[:12]}.json"
    path.write_text(json.dumps(evidence, indent=1) + "\n")
    print(f"{result['files']} files compared, {len(result['differ'])} differ -> {path.relative_to(ROOT)}")
    for rel, why in list(result["differ"].items())[:20]:
        print(f"  {rel}: {why}")
    return path


def rekey(*evidence_paths: str) -> int:
    """Re-key by each evidence in turn (a chain of refactors: old -> a -> b, each step proven); the
    last one's new commit must have the checkout's code. Nothing is written unless all are identical."""
    paths_ = [(ROOT / e).resolve() if not Path(e).is_absolute() else Path(e) for e in evidence_paths]
    evs = [json.loads(p.read_text()) for p in paths_]
    for path, ev in zip(paths_, evs):
        if not ev["identical"]:
            print(f"{path.name}: the sample differs in {len(ev['differ'])} files: not a refactor, nothing re-keyed;"
                  " rerun the runs of the notebooks the change touches")
            return 1
    for (a, ea), (b, eb) in zip(zip(paths_, evs), zip(paths_[1:], evs[1:])):
        if ea["new"] != eb["old"]:
            print(f"{a.name} ends at {ea['new'][:12]}, {b.name} starts at {eb['old'][:12]}: not a chain")
            return 1
    made = {json.loads(f.read_text()).get("provenance", {}).get("notebook", {}).get("name")
            for f in (ROOT / "results" / "runs").rglob("metrics.json")}  # the notebooks that made runs (no report)
    here, last = hashes(ROOT), evs[-1]["notebooks"]
    if any(here.get(n) != last[n]["new"] for n in made & set(last)):
        print(f"the checkout's code is not {evs[-1]['new'][:12]}'s (the last evidence's new commit): nothing re-keyed")
        return 1
    return max(_rekey_one(path, ev) for path, ev in zip(paths_, evs))


def _rekey_one(path: Path, ev: dict) -> int:
    moved, left = {}, {}
    for f in sorted((ROOT / "results" / "runs").rglob("metrics.json")):
        rec = json.loads(f.read_text())
        prov = rec.get("provenance") or {}
        nb = (prov.get("notebook") or {}).get("name")
        if nb not in ev["notebooks"]:
            continue
        was = {"kdlib_code": prov.get("kdlib_code"), "notebook": prov["notebook"].get("hash")}
        now = ev["notebooks"][nb]["new"]
        if was == now:
            continue
        if nb in TIMED or was != ev["notebooks"][nb]["old"]:
            left.setdefault(nb, []).append(f.parent.relative_to(ROOT).as_posix())
            continue
        prov["kdlib_code"], prov["notebook"]["hash"] = now["kdlib_code"], now["notebook"]
        prov.setdefault("rekeyed", []).append({"from": was, "evidence": path.relative_to(ROOT).as_posix()})
        renames = ev.get("renames") or {}
        if renames and isinstance(rec.get("params"), dict):  # a renamed parameter: its new name, in place
            rec["params"] = {renames.get(k, k): v for k, v in rec["params"].items()}
            params = f.parent / "params.json"
            if params.exists():
                params.write_text(json.dumps({renames.get(k, k): v for k, v in json.loads(params.read_text()).items()},
                                             indent=1, default=str))
        f.write_text(json.dumps(rec, indent=1, default=str))
        moved[nb] = moved.get(nb, 0) + 1
    print("re-keyed:", moved or "none")
    for nb, runs in left.items():
        why = "it measures time: rerun it" if nb in TIMED else "made by neither commit's code: rerun"
        print(f"left as they were ({why}): {nb}: {len(runs)}, e.g. {runs[0]}")
    return 0


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the sample with two commits' code and compare")
    r.add_argument("old")
    r.add_argument("new", nargs="?", default="HEAD")
    r.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="a parameter the change renames (its runs' records are compared and re-keyed under the new name)")
    r.add_argument("--text", action="append", default=[], metavar="OLD=>NEW", help="a label the change rewrites in texts")
    r.add_argument("--runs-only", action="store_true", help="compare the runs, not the reports (the change edits a report too)")
    r.add_argument("--added", action="append", default=[], metavar="NAME",
                   help="a field or table column only the new code writes (a new parameter at its default, a new log column)")
    one = sub.add_parser("sample", help="only run the sample with one commit's code (kept: run reuses it)")
    one.add_argument("commit")
    k = sub.add_parser("rekey", help="re-key the committed runs an identical check covers")
    k.add_argument("evidence", nargs="+", help="one evidence file, or a chain of them in order")
    a = ap.parse_args(argv[1:])
    if a.command == "rekey":
        return rekey(*a.evidence)
    if a.command == "sample":
        run_sample(worktree(git("rev-parse", a.commit)), this_machine())
        return 0
    renames = dict(x.split("=", 1) for x in a.rename)
    texts = dict(x.split("=>", 1) for x in a.text)
    path = run(a.old, a.new, renames, texts, a.runs_only, tuple(a.added))
    return 0 if json.loads(path.read_text())["identical"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
