"""Every kind of run the study makes, declared once: the registry that workflow/Snakefile (its
rules, workflow/rules/*.smk), workflow/stale.py and the tests read.

A *kind* is one notebook run per declared run of one table of workflow/study.py's `Study` (e.g.
`students`, name -> parameters). Its entry says which rule makes it, with which notebook, from
which table, to which file, on which data set, with how many threads, and which runs of other
kinds it reads: `upstream(S, name, params)` returns role -> a run, a list of runs, a mapping of
runs, or None (a role the run has not), each run a `(kind, name)` pair. From that one declaration
come both the rule's input files (ancient(), but for the roles in `fresh`) and its `upstream`
params (the keys of those runs), so no dependency is written twice. `order(S, name, params)`
declares inputs that are an order only (a run waits for them; their keys are not in its params).

`Runs(S, code, notebook, data)` computes what the rules need: a run's notebook parameters, its
output, its inputs, its key (a hash of its notebook's computing code, the kdlib code that reaches,
its data, its parameters and its upstream keys: what reruns it) and its `upstream` params.
Plain Python (no Snakemake): the Snakefile wraps the input files in ancient().
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

Ref = tuple  # (kind, run name): one run of one kind


@dataclass(frozen=True)
class Kind:
    rule: str                 # the Snakemake rule that makes its runs; refs name a kind by it
    notebook: str             # notebooks/<notebook>.py
    runs: str                 # the Study attribute holding its runs: name -> parameters
    out: str                  # its output, with {<wildcard>} standing for the run's name
    log: str                  # its executed notebook (papermill's output), as `out`
    data: str | None          # the data set its key holds: "imdb", "splice", "dataset" (the run's own), None
    doc: str
    wildcard: str = "name"
    threads: int | None = 0   # a run's `threads` when it declares none (0: every core the job has; None: no threads)
    upstream: Callable | None = None   # (S, name, params) -> {role: Ref | [Ref] | {key: Ref} | None}
    order: Callable | None = None      # (S, name, params) -> {role: Ref | [Ref]}: waited for, not in the key
    fresh: frozenset = frozenset()     # roles whose inputs are NOT ancient (a choice's candidates)
    upstream_param: str = "roles"      # the rule's `upstream` params: "roles" (role -> key(s)) or "value" (the one role's)
    key_upstream: str = "roles"        # how its key holds the upstream keys: "roles", or "value" (the one role's keys
    #                                    alone): as each kind's key was first made, so no committed run is re-keyed
    single: bool = False      # `runs` is one run's parameters (with its `name`), not a table
    constrain: bool = False   # its wildcard is constrained to its run names (outputs shared with other kinds)
    split: tuple | None = None  # (rule, Study attribute, doc): the runs in that set go to a second rule
    generated: bool = True    # its rule is made by rules/runs.smk (else: hand-written, rules/<study>.smk)
    stale: bool = True        # stale.py compares its runs' recorded parameters with the config's
    params: Callable | None = None  # (S, name) -> the notebook's parameters (default: the run's own)
    what: str = ""            # what a run is, in an error ("not a declared ...")

    @property
    def rules(self) -> list[str]:
        return [self.rule] + ([self.split[0]] if self.split else [])

    def table(self, S) -> dict:
        runs = getattr(S, self.runs)
        if self.single:
            return {runs["name"]: runs} if runs else {}
        return runs

    def path(self, name: str) -> str:
        return self.out.format(**{self.wildcard: name})


def teacher_run(S, name: str) -> Ref:
    """A run that makes a teacher, whichever kind: a fine-tune, another kind of teacher, a snapshot."""
    for kind, table in (("teacher", S.teachers), ("teacher_kind", S.kinds), ("teacher_snapshot", S.snapshot_params)):
        if name in table:
            return (kind, name)
    raise KeyError(f"{name!r} is not a declared teacher")


# ---- what each kind reads (upstream) and waits for (order) ---------------------------------------
def _transfer(S, n, p):
    return {"teacher": ("teacher", p["name"])}


def _student(S, n, p):
    teacher = p.get("teacher_run", "teacher")
    up = {"teacher": ("teacher", teacher)}
    if p.get("transfer_n") and teacher == S.transfer["name"]:  # any other teacher's pool: in its key
        up["transfer"] = ("teacher_transfer", teacher)
    if n in S.student_choice:
        up["choice"] = ("choose", S.student_choice[n])
    if p.get("match_steps"):
        up["match_steps"] = ("student", p["match_steps"])
    return up


def _choice(S, stem, spec):
    return {"candidates": [("student", n) for n in spec["candidates"]]}


def choice_params(S, stem: str) -> dict:
    """What notebooks/choose.py gets: the candidates' metrics.json (from results/), the keys and metric, the file it writes."""
    spec = S.choices[stem]
    return {"candidates": [f"runs/students/{n}/metrics.json" for n in spec["candidates"]],
            "keys": spec["keys"], "metric": spec["metric"], "out": f"choices/{stem}.json"}


def _teacher_run(S, n, p):
    return {"teacher": ("teacher", p.get("teacher_run", "teacher"))}


def _snapshot_before(S, run, p):
    """Snapshots of one training run one at a time: they share its checkpoints, and snapshot m
    resumes where m - 1 stopped."""
    return {"before": [("teacher_snapshot", f"{p['name']}{p['snapshot'] - 1}")] if p["snapshot"] > 1 else []}


def _multi(S, n, p):
    """Its teachers, and the teacher whose scale they are brought to when that is not one of them."""
    scale = [] if not p.get("calibrate", True) or p.get("scale_to", "teacher") in p["teachers"] else [p.get("scale_to", "teacher")]
    return {"teachers": {t: teacher_run(S, t) for t in [*p["teachers"], *scale]},
            "choice": ("choose", S.multi_choice[n]) if n in S.multi_choice else None}


def probe_teachers(p: dict) -> list[str]:
    """The teacher a probe reads, and the rerun of it whose weights it loads (checkpoint_run; none: its own)."""
    return [p.get("teacher_run", "teacher"), *([p["checkpoint_run"]] if p.get("checkpoint_run") else [])]


def _probe(S, n, p):
    return {"teachers": [("teacher", t) for t in probe_teachers(p)]}


def _layered(always_layers: bool):
    def upstream(S, n, p):
        teacher = p.get("teacher_run", "teacher")
        reads_layers = always_layers or p.get("hint_weight")
        return {"teacher": ("teacher", teacher), "layers": ("teacher_layer", f"layers_{teacher}") if reads_layers else None,
                "choice": ("choose", S.layer_choice[n]) if n in S.layer_choice else None}
    return upstream


def _latency(S, n, p):
    return {"teacher": ("teacher", p.get("teacher_run", "teacher"))}


def _pu_first(S, n, p):
    """Runs sharing a teacher trajectory wait for the run that trains it: an order, not a dependency
    (its key is not in their params, so a rerun of the first run does not rerun the others)."""
    leader = S.pu_leader.get(n)
    return {"first": ("pu_run", leader)} if leader else {}


# ---- the registry (this order is stale.py's) ------------------------------------------------------
KINDS: dict[str, Kind] = {k.rule: k for k in [
    Kind("teacher", "teacher", "teachers", "results/runs/{teacher}/metrics.json", "cache/executed/{teacher}.ipynb",
         "imdb", "Fine-tune a teacher, cache its logits (resumable: checkpoints in cache/teacher/).",
         wildcard="teacher", constrain=True, what="teacher"),
    Kind("student", "student", "students", "results/runs/students/{name}/metrics.json",
         "cache/executed/students/{name}.ipynb", "imdb", "One student run: results/runs/students/<name>/.",
         upstream=_student, what="student run"),
    Kind("pu_run", "online_pu", "pu", "results/runs/pu/{name}/metrics.json", "cache/executed/pu/{name}.ipynb",
         "dataset", "One PU run on a CPU (splice): results/runs/pu/<name>/.", order=_pu_first, constrain=True,
         split=("pu_run_gpu", "pu_gpu", "One PU run whose teacher is a transformer (IMDB-PU, MiniLM): a GPU on a cluster."),
         what="PU run"),
    Kind("teacher_kind", "teacher_kinds", "kinds", "results/runs/{kind}/metrics.json", "cache/executed/{kind}.ipynb",
         "imdb", "Another kind of teacher on study 1's splits (TF-IDF + LR, NB-SVM, BiGRU), its logits cached.",
         wildcard="kind", constrain=True, upstream=_teacher_run, key_upstream="value", what="teacher kind"),
    Kind("teacher_snapshot", "teacher_snapshots", "snapshot_params", "results/runs/{snaprun}/metrics.json",
         "cache/executed/{snaprun}.ipynb", "imdb",
         "One teacher of a snapshot ensemble (a MiniLM fine-tune with warm restarts): the training's first m cycles "
         "(checkpointed in the cache, shared by the ensemble's runs) and the logits of the weights at cycle m's end.",
         wildcard="snaprun", constrain=True, upstream=_teacher_run, order=_snapshot_before, key_upstream="value",
         what="snapshot"),
    Kind("multi_student", "multi_student", "multi", "results/runs/multi/{name}/metrics.json",
         "cache/executed/multi/{name}.ipynb", "imdb", "One student of several teachers: results/runs/multi/<name>/.",
         upstream=_multi, what="multi-teacher student"),
    Kind("teacher_layer", "teacher_layers", "probes", "results/runs/{probe}/metrics.json", "cache/executed/{probe}.ipynb",
         "imdb", "Probe every layer of a teacher on validation; cache the layers' pooled states: results/runs/layers_<teacher>/.",
         wildcard="probe", constrain=True, upstream=_probe, key_upstream="value", what="probe"),
    Kind("layer_student", "layer_student", "layer_students", "results/runs/layers/{name}/metrics.json",
         "cache/executed/layers/{name}.ipynb", "imdb",
         "One student of a teacher's logits and chosen layers: results/runs/layers/<name>/.",
         upstream=_layered(True), what="layer student"),
    Kind("transformer_student", "transformer_student", "transformers", "results/runs/transformer/{name}/metrics.json",
         "cache/executed/transformer/{name}.ipynb", "imdb",
         "One MiniLM student cut to a few layers: results/runs/transformer/<name>/.",
         upstream=_layered(False), what="transformer student"),
    Kind("splice_class", "splice_classes", "splice", "results/runs/splice_classes/{name}/metrics.json",
         "cache/executed/splice_classes/{name}.ipynb", "splice",
         "One splice run of study 3: its teacher, then every student from scratch and at every (T, alpha).",
         threads=1, what="splice run"),
    # a choice, the labelling of the transfer set and the latency run record no parameters stale.py compares
    Kind("choose", "choose", "choices", "results/choices/{choice}.json", "cache/executed/choices/{choice}.ipynb", None,
         "A choice made on validation from its candidate runs: results/choices/<choice>.json.",
         wildcard="choice", threads=None, upstream=_choice, params=choice_params,
         # not ancient: a candidate rerun in this pass makes the choice again in this pass, before any
         # run that reads it (Snakemake does not check the params of jobs downstream of a rerun job:
         # with ancient candidates, runs reading the choice would start from the old file)
         fresh=frozenset({"candidates"}), upstream_param="value", key_upstream="value", stale=False, what="choice"),
    Kind("teacher_transfer", "teacher", "transfer", "results/runs/{name}/transfer.json", "cache/executed/teacher_transfer.ipynb",
         "imdb", "The trained teacher labels transfer_n unlabelled reviews (a KD transfer set).",
         single=True, upstream=_transfer, key_upstream="value", generated=False, stale=False, what="transfer set"),
    Kind("latency", "latency", "latency", "results/runs/{name}/metrics.json", "cache/executed/latency.ipynb", "imdb",
         "Every model of the frontier timed alike.", single=True, upstream=_latency, key_upstream="value",
         generated=False, stale=False, what="latency run"),
]}


# ---- the reports: one notebook run each, reading many runs (rules/<study>.smk) -----------------------
def budget_reads(S) -> dict:
    """Study 5's report: seed 0's budget teachers (their students read them) and study 1's, the other
    initial seeds (the teacher curve's spread), every budget and study 1 student, study 1's choices."""
    budget = S.parts.get("budget") or {}
    seeds = [n for n in budget.get("teachers", []) if S.teachers[n].get("seed", 0)]
    return {"teachers": [n for n in budget.get("teachers", []) if n not in seeds] + [S.transfer["name"]],
            "teacher_seeds": seeds, "students": budget.get("students", []) + S.parts["imdb"]["students"],
            "choices": S.parts["imdb"]["choices"]}


def rating_reads(S) -> dict:
    """Study 3's report reads its own runs and the binary study's it compares them with."""
    rating = S.parts.get("rating") or {}
    return {what: S.parts["imdb"][what] + rating.get(what, []) for what in ("teachers", "choices", "students")}


def layers_teachers(S) -> list[str]:
    return sorted({p.get("teacher_run", "teacher") for p in S.probes.values()})


@dataclass(frozen=True)
class Report:
    notebook: str
    params: Callable          # (S) -> the notebook's parameters
    present: Callable = lambda S: True  # (S) -> whether its study is declared (else its rule reads nothing)


def _budget_report(S):
    reads = budget_reads(S)
    return {"teachers": reads["teachers"], "teacher_seeds": reads["teacher_seeds"], **(S.parts.get("budget") or {}).get("report", {})}


# report rule -> its notebook and parameters (its inputs and upstream keys: rules/<study>.smk)
REPORTS: dict[str, Report] = {
    "report": Report("report", lambda S: S.report),
    "pu_report": Report("pu_report", lambda S: S.pu_report),
    "rating_report": Report("rating_report", lambda S: (S.parts.get("rating") or {}).get("report", {}),
                            lambda S: bool(S.parts.get("rating"))),
    "multi_report": Report("multi_report", lambda S: S.multi_report, lambda S: bool(S.multi)),
    "budget_report": Report("budget_report", _budget_report, lambda S: bool(S.parts.get("budget"))),
    "layers_report": Report("layers_report", lambda S: {"teachers": layers_teachers(S), **S.layers_report},
                            lambda S: bool(S.probes)),
}


def declared(S) -> list[tuple[str, dict]]:
    """(notebook, parameters) of every notebook run the study declares: every run of every kind, every report."""
    runs = [(k.notebook, k.params(S, n) if k.params else p) for k in KINDS.values() for n, p in k.table(S).items()]
    return runs + [(r.notebook, r.params(S)) for r in REPORTS.values() if r.present(S)]


def key(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _map(value, f):
    """A role's value (a run, a list, a mapping of runs, None) with f applied to each run."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: f(v) for k, v in value.items()}
    if isinstance(value, list):
        return [f(v) for v in value]
    return f(value)


class Runs:
    """The registry applied to one study: runs' parameters, outputs, inputs, keys."""

    def __init__(self, S, code: dict, notebook: dict, data: dict, error=LookupError):
        self.S, self.code, self.notebook, self.data, self.error = S, code, notebook, data, error
        self.key = lru_cache(maxsize=None)(self._key)
        self.upstream = lru_cache(maxsize=None)(self._upstream)

    def kind(self, rule: str) -> Kind:
        return KINDS[rule]

    def table(self, kind: str) -> dict:
        return KINDS[kind].table(self.S)

    def lookup(self, kind: str, name: str) -> dict:
        try:
            return self.table(kind)[name]
        except KeyError:
            raise self.error(f"{name!r} is not a declared {KINDS[kind].what} (config/study.yaml)") from None

    def params(self, kind: str, name: str) -> dict:
        """What the run's notebook gets (papermill -y)."""
        k = KINDS[kind]
        p = self.lookup(kind, name)
        return k.params(self.S, name) if k.params else p

    def out(self, kind: str, names) -> str | list[str]:
        return KINDS[kind].path(names) if isinstance(names, str) else [KINDS[kind].path(n) for n in names]

    def data_hash(self, kind: str, name: str) -> str | None:
        data = KINDS[kind].data
        return self.data[self.lookup(kind, name)["dataset"]] if data == "dataset" else self.data.get(data) if data else None

    def threads(self, kind: str, name: str) -> int | None:
        """The run's `threads` (0: every core the job has) or its kind's default; None: the rule sets none."""
        default = KINDS[kind].threads
        return None if default is None else self.lookup(kind, name).get("threads", default)

    def _upstream(self, kind: str, name: str) -> dict:
        """role -> run(s) of other kinds this run reads; {} for a kind that reads none."""
        k = KINDS[kind]
        return k.upstream(self.S, name, self.lookup(kind, name)) if k.upstream else {}

    def upstream_keys(self, kind: str, name: str) -> dict:
        return {role: _map(refs, lambda r: self.key(*r)) for role, refs in self.upstream(kind, name).items()}

    def upstream_param(self, kind: str, name: str):
        """The rule's `upstream` params: role -> key(s), or for a kind of one role (a choice) its keys alone."""
        keys = self.upstream_keys(kind, name)
        return keys if KINDS[kind].upstream_param == "roles" else _only(keys)

    def _key(self, kind: str, name: str) -> str:
        """What the run is: its notebook's computing code, the kdlib code it reaches, its data, its
        parameters and the keys of the runs it reads."""
        k = KINDS[kind]
        data = self.data_hash(kind, name)
        parts = [self.code.get(k.notebook), self.notebook.get(k.notebook), *([data] if data else []), self.params(kind, name)]
        if k.upstream:
            keys = self.upstream_keys(kind, name)
            parts.append(keys if k.key_upstream == "roles" else _only(keys))
        return key(*parts)

    def inputs(self, kind: str, name: str) -> dict:
        """role -> (file or files, ancient?): the runs it reads (their keys in its params) and those it
        waits for (order); a role that is None is not an input."""
        k = KINDS[kind]
        order = k.order(self.S, name, self.lookup(kind, name)) if k.order else {}
        roles = {**self.upstream(kind, name), **order}
        return {role: (_map(refs, lambda r: self.out(*r)) if not isinstance(refs, dict) else
                       [self.out(*r) for r in refs.values()], role not in k.fresh)
                for role, refs in roles.items() if refs is not None}


def _only(keys: dict):
    (value,) = keys.values()
    return value
