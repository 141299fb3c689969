# The run rules, one per kind of run in the registry (workflow/kinds.py: KINDS), made by one loop:
# each runs its notebook through papermill on one run's parameters, looked up by the run's name.
# Its params are what reruns it (workflow/Snakefile, top): the run's parameters, its notebook's and
# kdlib's computing code, its data, and the keys of the runs it reads (`upstream`, from the same
# declaration as its input files). The kinds whose rules differ are hand-written in their study's
# file: the transfer-set labelling (rules/imdb.smk), the latency run (rules/layers.smk).


def run_inputs(kind):
    def inputs(wc):
        name = wc[0]  # the rule's one wildcard: the run's name
        return {"nb": nb(R.kind(kind).notebook, name), **upstream_inputs(kind, name)}
    return inputs


def run_params(kind):
    k = R.kind(kind)
    params = {"run": lambda wc: nb_params(R.params(kind, wc[0])), "code": CODE.get(k.notebook), "notebook": NB_HASH.get(k.notebook)}
    if k.data:
        params["data"] = (lambda wc: R.data_hash(kind, wc[0])) if k.data == "dataset" else DATA_HASH[k.data]
    if k.upstream:
        params["upstream"] = lambda wc: R.upstream_param(kind, wc[0])
    return params


def run_threads(kind):
    def threads(wc):
        n = R.threads(kind, wc[0])
        return 1 if n is None else threads_for(n)
    return threads


def run_rules(k):
    """(rule, its docstring, its wildcard's constraint or None) of one kind: one rule, or two where
    the kind sends a set of its runs to a rule of its own (PU runs with a transformer teacher: a GPU)."""
    runs = set(k.table(S))
    if not k.split:
        return [(k.rule, k.doc, (alternatives(runs) or "^$") if k.constrain else None)]
    rule2, attr, doc2 = k.split
    other = set(getattr(S, attr))
    return [(k.rule, k.doc, alternatives(runs - other)), (rule2, doc2, alternatives(other))]


for _kind in [k for k in kinds.KINDS.values() if k.generated]:
    for _rule, _doc, _constraint in run_rules(_kind):

        rule:
            name:
                _rule
            input:
                unpack(run_inputs(_kind.rule)),
            output:
                _kind.out,
            log:
                _kind.log,
            wildcard_constraints:
                **({_kind.wildcard: _constraint} if _constraint is not None else {}),
            params:
                **run_params(_kind.rule),
            threads: run_threads(_kind.rule)
            shell:
                "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"

        workflow.get_rule(_rule).docstring = _doc


# a target per group of student runs (every section's, prefixed outside imdb) and per PU group
for _g, _names in S.student_groups.items():

    rule:
        name:
            f"students_{_g}"
        input:
            out("student", _names),


for _g, _names in S.pu_groups.items():

    rule:
        name:
            f"pu_{_g}"
        input:
            out("pu_run", _names),
