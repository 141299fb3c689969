"""The study's runs, from config/study.yaml: name -> parameters, never the other way round.

A *group* of runs is a mapping with
    fixed:  parameters every run of the group gets
    grid:   axes (name -> list of values); the runs are their product, the first axis outermost.
            A value that is a mapping sets several parameters at once (e.g. {T: 1, alpha: 0}).
    name:   a template of the run's name, filled from the run's parameters (floats as %g; values
            listed under `codes` are written by their code, e.g. prior None -> "nat").
    choose: (IMDB students) the choice made on validation its runs read (imdb.choices), instead
            of the students' own `choose`.
A parameter's string value that holds "{...}" is a template too, filled like the name (e.g.
match_steps: "{arch}_h64_kd_xall_s{seed}": the run this one matches).
Two groups may declare the same run (the T sweep repeats the main grid's T = 2): same name and
same parameters is one run; same name with other parameters is an error.

`Study(config)` expands the config once; workflow/Snakefile looks every run's parameters up here by
name, and tests/test_workflow.py checks the expansion. Nothing here parses a name.
"""
from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

FLOATISH = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def load(path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def _value_for_name(key, value, codes):
    table = codes.get(key, {})
    if not isinstance(value, (list, dict)) and value in table:
        return table[value]
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):  # a list of run names (e.g. a student's teachers): joined by "+"
        return "+".join(str(_value_for_name(key, v, codes)) for v in value)
    return value


def run_name(template: str, params: dict, codes: dict | None = None) -> str:
    codes = codes or {}
    try:
        return template.format(**{k: _value_for_name(k, v, codes) for k, v in params.items()})
    except KeyError as e:
        raise ValueError(f"name template {template!r} uses {e}, which is not a parameter of the run {params}")


def expand(group: dict, inherited: dict | None = None, codes: dict | None = None,
           where: str = "group") -> dict[str, dict]:
    """The runs of one group: name -> parameters (including `name`), in declared order."""
    unknown = set(group) - {"fixed", "grid", "name", "gpu", "optional", "choose"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (known: fixed, grid, name, gpu, optional, choose)")
    if "name" not in group:
        raise ValueError(f"{where}: needs a `name` template")
    base = {**(inherited or {}), **(group.get("fixed") or {})}
    axes = list((group.get("grid") or {}).items())
    for axis, values in axes:
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: grid axis {axis!r} needs a non-empty list of values, got {values!r}")
    runs: dict[str, dict] = {}
    for combo in itertools.product(*[values for _, values in axes]):
        params = dict(base)
        for (axis, _), value in zip(axes, combo):
            if isinstance(value, dict):
                params.update(value)
            else:
                params[axis] = value
        for k, v in list(params.items()):
            if isinstance(v, str) and "{" in v:
                params[k] = run_name(v, params, codes)
        name = run_name(group["name"], params, codes)
        params["name"] = name
        _add(runs, name, params, where)
    return runs


def _add(runs: dict, name: str, params: dict, where: str):
    for k, v in params.items():
        if isinstance(v, str) and FLOATISH.match(v):
            raise ValueError(f"{where}: {name}: {k}={v!r} is a string (YAML reads 5e-4 as text): write {float(v)!r}")
    if name in runs and runs[name] != params:
        raise ValueError(f"{where}: two runs named {name!r} with different parameters:\n"
                         f"  {runs[name]}\n  {params}")
    runs.setdefault(name, params)


class Study:
    """Every run of the studies, expanded from the config dict: IMDB (`imdb`), PU (`pu`) and, when
    declared, binary vs eight classes on the same reviews (`rating`), several teachers (`multi`)
    and the label budget (`budget`). The IMDB sections share one
    table of teachers, choices and students (a rating run may read an IMDB choice or teacher);
    `parts[section]` lists each section's own, for its targets and its report."""

    def __init__(self, config: dict):
        imdb, pu = config["imdb"], config["pu"]

        # ---- IMDB sections: teachers, the transfer-set labelling, choices, students, report ------
        self.teachers: dict[str, dict] = {}
        self.students: dict[str, dict] = {}
        self.student_groups: dict[str, list[str]] = {}
        self.sweeps: set[str] = set()             # groups of choice sweeps (not in the report)
        self.student_choice: dict[str, str] = {}  # student -> choice stem it reads
        self.choices: dict[str, dict] = {}       # choice file stem (lr_gru) -> spec
        self.choice_of: dict[tuple, str] = {}     # (choice, value of `per`) -> stem
        self.choice_per: dict[str, str] = {}      # choice -> the parameter it is made per (e.g. arch)
        self.parts: dict[str, dict] = {}         # section -> its teachers, choices, students, report
        self.student_fixed = dict(imdb["students"].get("fixed") or {})
        self._add_teachers("imdb", imdb)
        transfer = dict(imdb["transfer"])
        if transfer.get("name") not in self.teachers:
            raise ValueError(f"imdb.transfer.name must be one of imdb.teachers {sorted(self.teachers)}")
        # the labelling reruns the teacher notebook on a trained teacher: same parameters + transfer_n
        self.transfer = {**self.teachers[transfer["name"]], **transfer}
        self._add_runs("imdb", imdb)
        self.splice: dict[str, dict] = {}  # splice junctions, three classes vs one against the rest
        if config.get("rating"):
            self._add_teachers("rating", config["rating"])
            self._add_runs("rating", config["rating"])
            if config["rating"].get("splice"):
                self.splice = expand(config["rating"]["splice"], where="rating.splice")
        if config.get("budget"):  # study 5's label budget: teachers and students of n labelled reviews
            self._add_teachers("budget", config["budget"])
            self._add_runs("budget", config["budget"])
        self.kinds: dict[str, dict] = {}      # teacher_kinds.py runs
        self.snapshots: dict[str, dict] = {}  # snapshot ensembles: <name> -> its config (cycles and the training)
        self.snapshot_params: dict[str, dict] = {}  # teacher_snapshots.py runs: <name><m> -> its parameters
        self.multi: dict[str, dict] = {}      # multi_student.py runs
        self.multi_choice: dict[str, str] = {}
        self.multi_report: dict = {}
        if config.get("multi"):
            self._add_multi(config["multi"])
        self.probes: dict[str, dict] = {}           # teacher_layers.py runs: layers_<teacher>
        self.layer_students: dict[str, dict] = {}   # layer_student.py runs
        self.layer_choice: dict[str, str] = {}
        self.transformers: dict[str, dict] = {}     # transformer_student.py runs
        self.latency: dict = {}                     # latency.py: every frontier model timed alike (one run)
        self.layers_report: dict = {}
        if config.get("layers"):
            self._add_layers(config["layers"])
        for n, p in self.students.items():
            if p.get("match_steps") and p["match_steps"] not in self.students:
                raise ValueError(f"{n}: match_steps={p['match_steps']!r} is not a declared student run")
        self.reported_students = self.parts["imdb"]["reported"]
        self.report = self.parts["imdb"]["report"]

        # ---- PU study --------------------------------------------------------------------------
        codes = pu.get("codes") or {}
        ignores = set(pu.get("teacher_ignores") or [])
        self.pu: dict[str, dict] = {}
        self.pu_groups: dict[str, list[str]] = {}
        self.pu_gpu: set[str] = set()
        self.pu_optional: set[str] = set()
        for gname, group in pu["groups"].items():
            runs = expand({"name": pu["name"], **group}, None, codes, where=f"pu.groups.{gname}")
            for n, p in runs.items():
                _add(self.pu, n, p, f"pu.groups.{gname}")
            self.pu_groups[gname] = list(runs)
            if group.get("gpu"):
                self.pu_gpu.update(runs)
            if group.get("optional"):
                self.pu_optional.add(gname)
        # runs that share a teacher trajectory (all parameters but those in teacher_ignores) wait for
        # the first of them in declared order, which trains and caches it
        first: dict[str, str] = {}
        self.pu_leader: dict[str, str] = {}
        for n, p in self.pu.items():
            tkey = repr(sorted((k, repr(v)) for k, v in p.items() if k not in ignores))
            if tkey in first:
                self.pu_leader[n] = first[tkey]
            else:
                first[tkey] = n
        self.reported_pu = [n for g, names in self.pu_groups.items() if g not in self.pu_optional for n in names]
        self.pu_report = dict(pu.get("report") or {})

    def _add_teachers(self, section: str, spec: dict) -> None:
        teachers = {n: {**(p or {}), "name": n} for n, p in (spec.get("teachers") or {}).items()}
        for n in teachers:
            if n in self.teachers:
                raise ValueError(f"{section}.teachers: {n!r} is already declared")
        self.teachers.update(teachers)
        self.parts[section] = {"teachers": list(teachers), "choices": [], "students": [], "reported": [],
                               "report": dict(spec.get("report") or {})}

    def _add_runs(self, section: str, spec: dict) -> None:
        """A section's choices (in declared order: a sweep may read an earlier choice, e.g. the lr;
        each a small sweep of student runs, one choice file per value of `per`) and student groups.
        Group names outside `imdb` are prefixed with the section's name."""
        part, prefix = self.parts[section], "" if section == "imdb" else f"{section}_"
        st = spec.get("students") or {}
        for cname, cspec in (spec.get("choices") or {}).items():
            unknown = set(cspec) - {"per", "keys", "metric", "candidates"}
            if unknown:
                raise ValueError(f"{section}.choices.{cname}: unknown keys {sorted(unknown)}")
            if cname in self.choice_per:
                raise ValueError(f"{section}.choices: {cname!r} is already declared")
            cands = self._student_group(cspec["candidates"], cspec["candidates"].get("choose"), f"{section}.choices.{cname}")
            self.student_groups[f"{cname}_sweep"] = list(cands)
            self.sweeps.add(f"{cname}_sweep")
            part["students"] += list(cands)
            per = self.choice_per[cname] = cspec["per"]
            for value in dict.fromkeys(p[per] for p in cands.values()):
                stem = f"{cname}_{value}"
                self.choices[stem] = {
                    "choice": cname, "per": {per: value}, "keys": list(cspec["keys"]), "metric": cspec["metric"],
                    "candidates": [n for n, p in cands.items() if p[per] == value]}
                self.choice_of[(cname, value)] = stem
                part["choices"].append(stem)
        for gname, group in (st.get("groups") or {}).items():
            runs = self._student_group(group, group.get("choose", st.get("choose")), f"{section}.students.groups.{gname}")
            self.student_groups[prefix + gname] = list(runs)
            part["students"] += list(runs)
            part["reported"] += list(runs)
        part["students"] = list(dict.fromkeys(part["students"]))
        part["reported"] = list(dict.fromkeys(part["reported"]))

    def _student_group(self, group: dict, choose: str | None, where: str) -> dict[str, dict]:
        """Expand one group of student runs, give each the choice file it reads, check its teacher
        and transfer set, and add them to `students`."""
        group = {k: v for k, v in group.items() if k != "choose"}
        runs = expand(group, self.student_fixed, where=where)
        for n, p in runs.items():
            if choose:
                if choose not in self.choice_per:
                    raise ValueError(f"{where}: no choice named {choose!r} declared before it (imdb.choices, rating.choices)")
                per = self.choice_per[choose]
                stem = self.choice_of.get((choose, p[per]))
                if stem is None:
                    raise ValueError(f"{n}: no {choose} choice for {per}={p[per]!r} (add it to the sweep)")
                p["choices"] = self.choice_path(stem)
                self.student_choice[n] = stem
            else:
                p.setdefault("choices", "")
            teacher = p.get("teacher_run", "teacher")
            if teacher not in self.teachers:
                raise ValueError(f"{n}: teacher_run={teacher!r} is not one of the declared teachers {sorted(self.teachers)}")
            # the pool a teacher labels: imdb.transfer for study 1's teacher, its own transfer_n for any other
            labelled = (self.transfer["transfer_n"] if teacher == self.transfer["name"]
                        else self.teachers[teacher].get("transfer_n", 0))
            wanted = p.get("transfer_n", 0)
            if wanted and (not labelled or (labelled != "all" and (wanted == "all" or wanted > labelled))):
                raise ValueError(f"{n}: transfer_n={wanted!r} but teacher {teacher!r} labels {labelled!r} "
                                 "unlabelled reviews (imdb.transfer, or the teacher's own transfer_n)")
            _add(self.students, n, p, where)
        return runs

    def snapshot_runs(self, name: str) -> list[str]:
        """The teacher runs of one snapshot ensemble: <name>1 .. <name><cycles>, one run each."""
        return [f"{name}{m}" for m in range(1, int(self.snapshots[name].get("cycles", 3)) + 1)]

    def _add_snapshot_runs(self, name: str) -> None:
        """One teacher_snapshots.py run per snapshot m (its `snapshot`): the ensemble's config less `cycles`."""
        cycles = self.snapshots[name].get("cycles", 3)
        if not isinstance(cycles, int) or isinstance(cycles, bool) or cycles < 2:
            raise ValueError(f"multi.snapshots.{name}: cycles must be an integer >= 2, got {cycles!r}")
        base = {k: v for k, v in self.snapshots[name].items() if k != "cycles"}
        for m, run in enumerate(self.snapshot_runs(name), 1):
            self.snapshot_params[run] = {**base, "snapshot": m}

    def _add_multi(self, spec: dict) -> None:
        """Study 4, several teachers: the other teacher kinds, the snapshot ensembles, the pool the
        students choose from, the multi-teacher students (each reading an IMDB choice) and the report."""
        unknown = set(spec) - {"kinds", "snapshots", "pool", "students", "singles", "pool_students", "report"}
        if unknown:
            raise ValueError(f"multi: unknown keys {sorted(unknown)}")
        made = set(self.teachers)
        for section, table in (("kinds", self.kinds), ("snapshots", self.snapshots)):
            for n, p in (spec.get(section) or {}).items():
                if n in made or n in table:
                    raise ValueError(f"multi.{section}: {n!r} is already declared")
                table[n] = {**(p or {}), "name": n}
                ref = table[n].get("teacher_run", "teacher")
                if ref not in self.teachers:
                    raise ValueError(f"multi.{section}.{n}: teacher_run={ref!r} is not a declared teacher")
                if section == "snapshots":
                    self._add_snapshot_runs(n)
                made.update(self.snapshot_runs(n) if section == "snapshots" else [n])
        pool = list(spec.get("pool") or [])
        if not pool or len(set(pool)) != len(pool) or set(pool) - made:
            raise ValueError(f"multi.pool must list declared teachers without repeats; unknown: {sorted(set(pool) - made)}")
        self.pool = pool
        groups = [(k, g) for k in ("students", "singles", "pool_students")  # singles: each pool teacher alone;
                  # pool_students: train + the unlabelled pool labelled by a fused teacher (issue 56)
                  for g in (spec.get(k) if isinstance(spec.get(k), list) else [spec.get(k)]) if g]
        for key, group in groups:
            group = dict(group)
            choose = group.pop("choose", None)
            for n, p in expand(group, where=f"multi.{key}").items():
                p.setdefault("teachers", list(pool))
                if set(p["teachers"]) - made:
                    raise ValueError(f"multi: {n} names undeclared teachers {sorted(set(p['teachers']) - made)}")
                self._read_choice(n, p, choose, self.multi_choice, "multi")
                _add(self.multi, n, p, f"multi.{key}")
        self.multi_report = {"teachers": list(pool), **(spec.get("report") or {})}

    def _read_choice(self, n: str, p: dict, choose: str | None, table: dict, where: str) -> None:
        """Give run `n` the choice file of `choose` for its value of the choice's `per` (e.g. its arch)."""
        if not choose:
            return
        stem = self.choice_of.get((choose, p.get(self.choice_per.get(choose, ""))))
        if stem is None:
            raise ValueError(f"{where}: {n}: no {choose!r} choice declared for it (imdb.choices)")
        p["choices"] = self.choice_path(stem)
        table[n] = stem

    def _add_layers(self, spec: dict) -> None:
        """Study 5's critical layers and transformer student: the probes of teachers' layers
        (teacher_layers.py, named layers_<teacher>), the layer students, the transformer students."""
        unknown = set(spec) - {"teachers", "probes", "students", "transformer", "latency", "report"}
        if unknown:
            raise ValueError(f"layers: unknown keys {sorted(unknown)}")
        self._add_teachers("layers", spec)  # reruns of probed teachers, for their weights (checkpoint_run)
        for n, p in (spec.get("probes") or {}).items():
            p = {**(p or {}), "name": n}
            teacher = p.get("teacher_run", "teacher")
            if teacher not in self.teachers or n != f"layers_{teacher}":
                raise ValueError(f"layers.probes: {n!r} must be named layers_<teacher_run> of a declared teacher")
            again = p.get("checkpoint_run")
            if again is not None and (again not in self.teachers or fine_tune(self.teachers[again]) != fine_tune(self.teachers[teacher])):
                raise ValueError(f"layers.probes: {n}: checkpoint_run={again!r} must be a declared teacher fine-tuned as "
                                 f"{teacher!r} is (the same parameters but name, threads and transfer_n)")
            self.probes[n] = p
        for section, table in (("students", self.layer_students), ("transformer", self.transformers)):
            group = dict(spec.get(section) or {})
            choose = group.pop("choose", None)
            if not group:
                continue
            for n, p in expand(group, where=f"layers.{section}").items():
                teacher = p.get("teacher_run", "teacher")
                if teacher not in self.teachers:
                    raise ValueError(f"layers.{section}: {n}: teacher_run={teacher!r} is not a declared teacher")
                if (section == "students" or p.get("hint_weight")) and f"layers_{teacher}" not in self.probes:
                    raise ValueError(f"layers.{section}: {n} reads the layers of {teacher!r}: declare layers_{teacher} in layers.probes")
                self._read_choice(n, p, choose, self.layer_choice, f"layers.{section}")
                _add(table, n, p, f"layers.{section}")
        if spec.get("latency") is not None:
            self.latency = {**spec["latency"], "name": "latency"}
            if self.latency.get("teacher_run", "teacher") not in self.teachers:
                raise ValueError(f"layers.latency: teacher_run={self.latency['teacher_run']!r} is not a declared teacher")
        self.layers_report = dict(spec.get("report") or {})

    @staticmethod
    def choice_path(stem: str) -> str:
        return f"results/choices/{stem}.json"


def fine_tune(teacher: dict) -> dict:
    """A teacher run's parameters that make its weights: all but its name, threads and pool labelling."""
    return {k: v for k, v in teacher.items() if k not in ("name", "threads", "transfer_n")}


def notebook_parameters(py: Path) -> dict:
    """The names and default values (as source text) of the parameters cell of a jupytext notebook."""
    from kdlib.provenance import cells  # the one reader of a notebook's cells and tags

    cell = [body for tags, body in cells(Path(py)) if "parameters" in tags]
    if len(cell) != 1:
        raise ValueError(f"{py}: needs exactly one cell tagged parameters")
    body = cell[0]
    tree = ast.parse(body)
    return {t.id: ast.get_source_segment(body, node.value)
            for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def undeclared(params: dict, py: Path) -> set[str]:
    """Parameters a run passes that the notebook's parameters cell does not declare."""
    return set(params) - set(notebook_parameters(py))
