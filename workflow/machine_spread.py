"""Does a committed student run repeat on this machine? Rerun it with its declared parameters, the
checkout's code and the same inputs, in a cache of its own (no checkpoint of the original is resumed),
and keep the rerun's record beside the original for the study page to compare (issue 54, point 5).

    python workflow/machine_spread.py NAME... [--jobs 2] [--check]    (make machine-spread RUNS="NAME ...")

NAME: a student run of config/study.yaml (kind `student`) that is finished and current (the code it
recorded is the checkout's: `workflow/stale.py` lists it as neither stale nor missing). Each rerun runs
notebooks/student.py through papermill in build/machine/<NAME>/, whose results folder holds only a
link to the run's teacher (its metrics and committed logits) and whose cache starts empty, and its
record (metrics.json, test_scores.npz) is copied to results/machine/<NAME>/. An interrupted rerun
resumes from its own checkpoints. notebooks/report.py reads results/machine/ (`kdlib.report.rerun_spread`).
Why it matters: a run repeats bit for bit on one machine, not across CPUs (docs/methods.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(ROOT))
import kinds  # noqa: E402
import stale  # noqa: E402
import study  # noqa: E402

from kdlib.provenance import code_hash, file_hash, notebook_hash  # noqa: E402

BUILD = ROOT / "build" / "machine"
OUT = ROOT / "results" / "machine"
KEPT = ("metrics.json", "test_scores.npz")


def plan(names, root: Path = ROOT) -> dict:
    """name -> the parameters papermill gets, after checking that each run can be rerun as it was made:
    declared, finished, made by the checkout's code with these parameters, and reading no other student."""
    S = study.Study(study.load(root / "config" / "study.yaml"))
    table = kinds.KINDS["student"].table(S)
    code = {"kdlib code": code_hash("student"), "notebook": notebook_hash("student")}
    out, problems = {}, []
    for n in names:
        if n not in table:
            problems.append(f"{n!r} is not a declared student run (config/study.yaml)")
            continue
        f = root / kinds.KINDS["student"].path(n)
        if not f.exists():
            problems.append(f"{n!r} has no record ({f.relative_to(root)}): run it first")
            continue
        rec = json.loads(f.read_text())
        prov = rec.get("provenance") or {}
        made = {"kdlib code": prov.get("kdlib_code"), "notebook": (prov.get("notebook") or {}).get("hash")}
        diff = stale.differences(table[n], rec.get("params", {}))
        diff.update({k: (code[k], made[k]) for k in code if made[k] != code[k]})
        choice = table[n].get("choices")
        now = (file_hash(root / choice) if (root / choice).exists() else "missing") if choice else None
        if choice and (prov.get("inputs") or {}).get("choices") != now:
            diff["choice file"] = (now, (prov.get("inputs") or {}).get("choices"))
        if diff:
            problems.append(f"{n!r} is stale (recorded vs declared: {diff}): a rerun would differ by more than the machine")
        elif table[n].get("match_steps"):
            problems.append(f"{n!r} reads another student's steps (match_steps): not supported here")
        else:
            out[n] = table[n]
    if problems:
        raise SystemExit("machine_spread: nothing run:\n  " + "\n  ".join(problems))
    return out


def mirror(src: Path, dst: Path) -> None:
    """`dst` as real folders holding links to `src`'s files (kdlib.kept_logits finds a teacher's kept
    logits by walking folders, and Path.rglob does not enter a linked folder)."""
    for f in src.rglob("*"):
        if f.is_file():
            t = dst / f.relative_to(src)
            t.parent.mkdir(parents=True, exist_ok=True)
            if not t.exists():
                t.symlink_to(f)


def rerun(name: str, params: dict, data: Path) -> Path:
    """Run notebooks/student.py on `params` in build/machine/<name>/ (papermill -y, as the workflow's
    rule does) and copy its record to results/machine/<name>/."""
    import subprocess

    import yaml

    work = BUILD / name
    results = work / "results"
    teacher = params.get("teacher_run", "teacher")
    mirror(ROOT / "results" / "runs" / teacher, results / "runs" / teacher)
    nb = work / "student.ipynb"
    py = [sys.executable, "-m"]
    subprocess.run(py + ["jupytext", "--quiet", "--to", "ipynb", "-o", str(nb), str(ROOT / "notebooks" / "student.py")],
                   check=True)
    env = {**os.environ, "KDLIB_RESULTS": str(results), "KDLIB_CACHE": str(work / "cache"), "KDLIB_DATA": str(data),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    y = yaml.safe_dump(params, default_flow_style=True, sort_keys=True, width=1 << 20).strip()
    with open(work / "papermill.log", "w") as log:
        subprocess.run(py + ["papermill", "--log-output", "--cwd", str(ROOT / "notebooks"), str(nb),
                             str(work / "student.out.ipynb"), "-y", y], check=True, env=env, stdout=log, stderr=log)
    made = results / Path(kinds.KINDS["student"].path(name)).relative_to("results")
    dest = OUT / name
    dest.mkdir(parents=True, exist_ok=True)
    for f in KEPT:
        shutil.copy2(made.parent / f, dest / f)
    return dest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="+", help="student runs of config/study.yaml")
    ap.add_argument("--jobs", type=int, default=1, help="reruns side by side (each at its declared threads), 1 or more")
    ap.add_argument("--check", action="store_true", help="only check the runs and list what would rerun")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        ap.error(f"--jobs must be 1 or more, got {a.jobs}")
    todo = plan(a.names)
    if a.check:
        print("\n".join(f"would rerun {n}: {p}" for n, p in todo.items()))
        return
    data = Path(os.environ.get("KDLIB_DATA") or ROOT.parent / "shared" / "data").resolve()
    todo = {n: p for n, p in todo.items() if not (OUT / n / "metrics.json").exists() or print(f"{n}: already rerun (results/machine/{n})")}
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for dest in tqdm(pool.map(lambda n: rerun(n, todo[n], data), todo), total=len(todo), desc="reruns"):
            print("rerun kept:", dest.relative_to(ROOT))


if __name__ == "__main__":
    main()
