# Helpers every rule file uses: where a run's notebook, output and key come from (the registry,
# workflow/kinds.py, applied to this study: R), and the notebook rule that makes a run's notebook.


def nb(name, run):
    """The papermill input of one run: notebooks/<name>.py as .ipynb, made for this run alone (a
    notebook shared by all runs would, once rebuilt for one of them, rerun every other)."""
    return f"build/workflow/{name}/{run}.ipynb"


def nb_params(params):
    """A run's parameters as one line of YAML for `papermill -y` (and for the params trigger)."""
    return yaml.safe_dump(params, default_flow_style=True, sort_keys=True, width=1 << 20).strip()


def alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def threads_for(n):
    """Snakemake threads of a run whose notebook gets `threads` n (0: torch's default, all cores)."""
    return int(n) if n else max(1, workflow.cores or 1)


key = kinds.key
out = R.out  # out(kind, name or names): a run's output file(s)
keys = lambda kind, names: [R.key(kind, n) for n in names]  # noqa: E731
teacher_out = lambda name: R.out("teacher", name)  # noqa: E731  (any teacher-like run: same layout)
choice_out = lambda stems: R.out("choose", stems)  # noqa: E731


def upstream_inputs(kind, name):
    """A run's input files from the registry: the runs it reads and waits for, ancient() but for the
    roles its kind keeps fresh (a choice's candidates)."""
    return {role: ancient(files) if old else files for role, (files, old) in R.inputs(kind, name).items()}


def report_params(rule):
    """A report's parameters (workflow/kinds.py: REPORTS) as its notebook gets them."""
    return nb_params(kinds.REPORTS[rule].params(S))


# ---- notebooks: jupytext .py -> .ipynb ---------------------------------------------------------
rule notebook:
    input:
        ancient("notebooks/{nb}.py"),
    output:
        temp("build/workflow/{nb}/{run}.ipynb"),
    params:
        notebook=lambda wc: NB_HASH[wc.nb],
    shell:
        "{PY} -m jupytext --quiet --to ipynb -o {output} {input}"

