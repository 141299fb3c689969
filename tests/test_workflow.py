"""The Snakemake workflow: runs declared once as data, names built from parameters, reruns on a change.

The dry run of the whole study is `make dry-run` (its second half, `make dry-run-all`, is part of `make test`); here: the config's
expansion, and the rerun mechanism on a tiny workflow with the study's own rerun triggers.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
import study  # noqa: E402

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="module")
def S():
    return study.Study(study.load(ROOT / "config" / "study.yaml"))


def test_config_expands_to_the_declared_grids(S):
    # lr sweep 2 archs x 4 rates; kd sweep 3 seeds x 2 sizes x 2 archs x 2 alphas x 4 T;
    # scratch 5 seeds x 3 sizes x 2 + 3 x 2 x 2; kd 9 x 2 + 3 x 2 x 2; controls 3 x 2 x 2 x 2;
    # T_train 2 teacher 3 x 2 x 2; transfer 3 x 2 x 2 + steps 3 x 2; replicate teachers (issue 54.5):
    # teacher seeds 2 x 3 x 2, split seeds scratch + kd 2 x 2 x 3 x 2
    assert len(S.parts["imdb"]["students"]) == 8 + 96 + 30 + 12 + 18 + 12 + 24 + 24 + 12 + 12 + 6 + 12 + 24
    assert S.parts["imdb"]["teachers"] == ["teacher", "teacher_T2", "teacher_s1", "teacher_s2", "teacher_split1",
                                           "teacher_split2"]
    assert S.teachers["teacher_s1"]["seed"] == 1 and S.teachers["teacher_split2"]["split_seed"] == 2
    kd_s1 = S.students["gru_h64_kd_teacher_s1_s2"]
    assert kd_s1["teacher_run"] == "teacher_s1" and kd_s1["choices"] == "results/choices/kd_gru.json"
    assert S.students["cnn_h64_scratch_teacher_split1_s0"]["alpha"] == 0
    assert S.students["cnn_h64_smoothed_T_s2"]["targets"] == "smoothed_T"  # controls at T: 3 x 2 x 2 x 2
    assert len(S.reported_pu) == 60 + 54 + 180 + 180 + 160 + 120 + 80 + 18
    sar = S.pu["splice_pinat_c0.2_wnaive_a0.5_b0.5_on_cnn64_s4_sel-lu_auc_sar-gc_sark2.0"]  # issue 55.5: SAR beside SCAR
    assert (sar["labelling"], sar["sar_by"], sar["sar_strength"]) == ("sar", "gc", 2.0)
    assert "splice_pinat_c0.2_innpu_a0.5_b0.5_on_gru64_s0_sel-lu_auc_sar-gc" in S.pu
    # issue 55.6: online and offline (from the selected teacher) at each alpha x label_share corner; offline from each teacher
    assert S.pu["splice_pinat_c0.2_innpu_a0.25_b0.75_off_cnn64_s3_sel-lu_auc_tfromselected"]["offline_teacher"] == "selected"
    assert S.pu["splice_pinat_c0.2_innpu_a0.5_b0.5_off_gru64_s0_sel-lu_auc_tfrom2"]["offline_teacher"] == 2
    assert S.teachers["teacher_T2"]["T_train"] == 2.0
    assert S.transfer == {**S.teachers["teacher"], "transfer_n": "all"}
    assert S.students["gru_h64_scratch_s4"]["patience"] == 3
    assert S.students["cnn_h32_T8_a1_s2"]["choices"] == "results/choices/lr_cnn.json"  # the kd sweep reads lr
    assert S.students["cnn_h16_kd_s4"]["choices"] == "results/choices/kd_cnn.json"
    assert S.choices["kd_gru"]["keys"] == ["T", "alpha", "lr"] and len(S.choices["kd_gru"]["candidates"]) == 48
    assert S.students["gru_h64_scratch_steps_s1"]["match_steps"] == "gru_h64_soft_xall_s1"
    assert "gru_h64_T2_a0.5_s0" in S.students and "splice_pinat_c0.2_innpu_a0.5_b0.5_off_gru64_s1" in S.pu


def test_the_rating_study_is_its_own_part_reading_study_1s_choices(S):
    # kd sweep 3 seeds x 2 sizes x 2 archs x 2 alphas x 4 T; the same sweep for binary students of the
    # rating teacher; scratch 3 x 4 x 2; kd 3 x 2 x 2; controls 3 x 2 x 2 x 2
    rating = S.parts["rating"]
    assert len(rating["students"]) == 96 + 96 + 24 + 12 + 24 and len(S.students) == 230 + 36 + 24 + 252 + 108
    assert rating["teachers"] == ["teacher_rating"] and S.teachers["teacher_rating"]["task"] == "rating"
    assert rating["choices"] == ["rating_kd_gru", "rating_kd_cnn", "rating_binary_kd_gru", "rating_binary_kd_cnn"]
    assert not set(rating["students"]) & set(S.parts["imdb"]["students"])
    sweep = S.students["rating_gru_h32_T4_a1_s2"]
    assert sweep["task"] == "rating" and sweep["teacher_run"] == "teacher_rating"
    assert sweep["choices"] == "results/choices/lr_gru.json" and sweep["epochs"] == 30  # study 1's lr and budget
    assert S.students["rating_cnn_h128_kd_s1"]["choices"] == "results/choices/rating_kd_cnn.json"
    binary = S.students["gru_h32_ratingteacher_T2_a0.5_s2"]  # its own sweep, at study 1's lr
    assert binary["task"] == "binary" and binary["teacher_run"] == "teacher_rating"
    assert binary["choices"] == "results/choices/lr_gru.json"
    assert "rating_controls" in S.student_groups and "controls" in S.student_groups  # prefixed, no clash
    assert set(rating["reported"]) == set(rating["students"]) - set(S.student_groups["rating_kd_sweep"]) \
        - set(S.student_groups["rating_binary_kd_sweep"])
    assert sorted(S.splice) == [f"splice_{t}_s{s}" for t in ("ei", "three") for s in (0, 1, 2)]
    assert S.splice["splice_three_s2"] == {"task": "three", "seed": 2, "name": "splice_three_s2"}
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["rating"]["teachers"] = {"teacher": {}}
    with pytest.raises(ValueError, match="already declared"):
        study.Study(cfg)
    del cfg["rating"]
    assert "rating" not in study.Study(cfg).parts  # the section is optional


def test_the_multi_teacher_study_declares_its_teachers_pool_and_students(S):
    # 3 seeds x 2 archs x 9 arms (the best single teacher, 5 fusions of all 7, mean_probs of 2, 3, 5);
    # singles: seed 0 x 2 archs x the 5 pool teachers without a twin elsewhere, + 2 seeds of the chosen one
    alone = {n: p for n, p in S.multi.items() if "_alone_" in n}
    # pool_students (issue 56.2): 3 seeds x 2 archs, stacking of the 6 best on train + the whole pool
    assert len(S.multi) == 54 + 12 + 6 and len(alone) == 12 and alone["cnn_h64_alone_teacher_snap1_s2"]["seed"] == 2
    pool = S.multi["gru_h64_stacking_m6_xall_s2"]
    assert pool["transfer_n"] == "all" and pool["teachers"] == S.pool and pool["choices"] == "results/choices/kd_gru.json"
    assert alone["gru_h64_alone_teacher_snap3_s0"]["teachers"] == ["teacher_snap3"]  # a list's names joined by "+"
    assert study.run_name("{teachers}", {"teachers": ["a", "b"]}) == "a+b"
    assert all(p["top"] == 1 and "scale_to" not in p for p in alone.values())  # scaled to study 1's teacher, read too
    R = _runs(S)
    assert set(R.upstream_param("multi_student", "cnn_h64_alone_teacher_bigru_s0")["teachers"]) == {"teacher_bigru", "teacher"}
    assert list(R.upstream_param("multi_student", "cnn_h64_mean_probs_m7_s0")["teachers"]) == S.pool  # as before
    assert S.snapshot_runs("teacher_snap") == ["teacher_snap1", "teacher_snap2", "teacher_snap3"]
    # one run per snapshot, the ensemble's config less its `cycles`: one training, checkpointed once
    ensemble = {k: v for k, v in S.snapshots["teacher_snap"].items() if k != "cycles"}
    assert all({**ensemble, "snapshot": m} == S.snapshot_params[t] for m, t in enumerate(S.snapshot_runs("teacher_snap"), 1))
    assert S.pool[0] == "teacher" and len(S.pool) == 7 and set(S.kinds) <= set(S.pool)
    run = S.multi["cnn_h64_mimic_all_m7_s2"]
    assert run["teachers"] == S.pool and run["choices"] == "results/choices/kd_cnn.json" and run["fusion"] == "mimic_all"
    assert S.multi_report["teachers"] == S.pool
    for name, params in S.multi.items():
        assert params["name"] == name and not study.undeclared(params, ROOT / "notebooks" / "multi_student.py")
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["multi"]["snapshots"]["teacher_snap"]["cycles"] = 1
    with pytest.raises(ValueError, match="cycles must be an integer >= 2"):
        study.Study(cfg)
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["multi"]["pool"] = ["teacher", "teacher_snap4"]
    with pytest.raises(ValueError, match="teacher_snap4"):
        study.Study(cfg)
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["multi"]["kinds"]["teacher_T2"] = {"kind": "nbsvm"}
    with pytest.raises(ValueError, match="already declared"):
        study.Study(cfg)
    del cfg["multi"]
    assert study.Study(cfg).multi == {}  # the section is optional


def test_the_label_budget_declares_a_teacher_per_n_and_its_students(S):
    budget = S.parts["budget"]
    ns = [100, 250, 500, 1000, 2500, 5000]
    # a teacher per n (seed 0, which labels the pool and teaches the students), and two more initial seeds of each
    assert budget["teachers"] == [f"teacher_n{n}" for n in ns] + [f"teacher_n{n}_s{s}" for n in ns for s in (1, 2)]
    assert [S.teachers[t]["train_subset"] for t in budget["teachers"]] == ns + [n for n in ns for _ in (1, 2)]
    for t in budget["teachers"]:  # at least 2 epochs and about 100 optimizer steps of 32
        n, seed = S.teachers[t]["train_subset"], S.teachers[t].get("seed", 0)
        assert S.teachers[t]["epochs"] == max(2, -(-3200 // n))
        assert (S.teachers[t].get("transfer_n") == "all") == (seed == 0), t  # only seed 0's labels the pool
    assert not any(S.students[n]["teacher_run"].endswith(("_s1", "_s2")) for n in budget["students"])
    # scratch, KD and KD + pool: 3 seeds x 2 archs x 6 budgets each
    assert len(budget["students"]) == 3 * 36 and set(S.student_groups) >= {"budget_scratch", "budget_kd", "budget_kd_pool"}
    for n in S.student_groups["budget_scratch"] + S.student_groups["budget_kd"]:
        p = S.students[n]  # patience: 3 epochs or 300 steps of 64, whichever is longer; cap 10 x patience (>= 30)
        steps = -(-S.teachers[p["teacher_run"]]["train_subset"] // 64)
        assert p["patience"] == max(3, -(-300 // steps)) and p["epochs"] == max(30, 10 * p["patience"]), n
    pool = S.students["budget/teacher_n250/cnn_h64_kd_xall_s1"]
    assert pool["transfer_n"] == "all" and pool["choices"] == "results/choices/kd_cnn.json"
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["budget"]["teachers"]["teacher_n100"].pop("transfer_n")  # a pool only its own teacher labelled
    with pytest.raises(ValueError, match="teacher_n100"):
        study.Study(cfg)


def test_the_critical_layers_and_transformer_students_are_declared(S):
    assert set(S.probes) == {"layers_teacher_again", "layers_teacher_n1000_again"}
    # 3 seeds x 2 archs x 2 teachers (whole split, n = 1000) x 3 layer choices
    assert len(S.layer_students) == 36 and len(S.transformers) == 9
    run = S.layer_students["teacher_n1000_again/cnn_h64_probe_s2"]
    assert run["epochs"] == 190 and run["patience"] == 19 and run["choices"] == "results/choices/kd_cnn.json"
    assert S.layer_students["teacher_again/gru_h64_last3_s0"]["hint_weight"] == 0.5
    # logits only: the layer term's weight is declared 0, as the run records it (stale.py compares the two)
    assert S.layer_students["teacher_again/gru_h64_none_s0"]["hint_weight"] == 0.0
    # logits and hidden states of one teacher: the layer study's own fine-tunes, whose checkpoints this checkout keeps
    assert {p["teacher_run"] for p in (*S.layer_students.values(), *S.transformers.values())} == {"teacher_again", "teacher_n1000_again"}
    assert S.transformers["minilm3_a0_h0_s1"]["keep"] == [0, 2, 4] and S.transformers["minilm3_a0.5_h0.5_s2"]["hint_weight"] == 0.5
    for table, nb in ((S.layer_students, "layer_student"), (S.transformers, "transformer_student"), (S.probes, "teacher_layers")):
        for name, params in table.items():
            assert params["name"] == name and not study.undeclared(params, ROOT / "notebooks" / f"{nb}.py"), name
    cfg = study.load(ROOT / "config" / "study.yaml")
    del cfg["layers"]["probes"]["layers_teacher_n1000_again"]
    with pytest.raises(ValueError, match="declare layers_teacher_n1000_again"):
        study.Study(cfg)


def test_a_probe_loads_a_reruns_weights_only_when_the_rerun_is_declared_alike():
    # checkpoint_run: a probe of a teacher whose checkpoint is gone may load a rerun's weights (checked
    # byte-identical by teacher_layers.py); study.py checks the rerun is declared with its parameters
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["layers"]["probes"]["layers_teacher_n1000"] = {"teacher_run": "teacher_n1000", "checkpoint_run": "teacher_n1000_again"}
    probe = study.Study(cfg).probes["layers_teacher_n1000"]
    assert probe["checkpoint_run"] == "teacher_n1000_again"
    cfg["layers"]["teachers"]["teacher_n1000_again"]["epochs"] = 5  # would not reproduce teacher_n1000's weights
    with pytest.raises(ValueError, match="fine-tuned as 'teacher_n1000' is"):
        study.Study(cfg)
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["layers"]["probes"]["layers_teacher"] = {"teacher_run": "teacher", "checkpoint_run": "teacher_n1000_again"}
    with pytest.raises(ValueError, match="checkpoint_run='teacher_n1000_again'"):
        study.Study(cfg)


def test_group_choices_templates_and_references_are_checked():
    def study_with(**students):
        cfg = study.load(ROOT / "config" / "study.yaml")
        cfg["imdb"]["students"]["groups"] = students
        return study.Study(cfg)

    with pytest.raises(ValueError, match="no choice named 'nope'"):
        study_with(g={"name": "r{seed}", "choose": "nope", "grid": {"seed": [0], "arch": ["gru"]}})
    with pytest.raises(ValueError, match="not a declared student run"):
        study_with(g={"name": "r{seed}", "fixed": {"arch": "gru", "match_steps": "x{seed}"}, "grid": {"seed": [0]}})
    with pytest.raises(ValueError, match="not one of the declared teachers"):
        study_with(g={"name": "r{seed}", "fixed": {"arch": "gru", "teacher_run": "t9"}, "grid": {"seed": [0]}})
    with pytest.raises(ValueError, match="labels"):
        study_with(g={"name": "r{seed}", "fixed": {"arch": "gru", "teacher_run": "teacher_T2", "transfer_n": 10},
                      "grid": {"seed": [0]}})
    s = study_with(a={"name": "a{seed}", "fixed": {"arch": "cnn"}, "grid": {"seed": [0]}},
                   b={"name": "b{seed}", "fixed": {"arch": "cnn", "match_steps": "a{seed}"}, "grid": {"seed": [0]}})
    assert s.students["b0"]["match_steps"] == "a0"


def test_every_name_is_built_from_its_parameters_and_every_parameter_is_declared(S):
    for runs, nb in ((S.students, "student"), (S.pu, "online_pu")):
        for name, params in runs.items():
            assert params["name"] == name
            assert not study.undeclared(params, ROOT / "notebooks" / f"{nb}.py"), name


def _workflow_text():
    """The Snakefile, its rule files and the registry its rules are made from."""
    files = [ROOT / "workflow" / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk")), ROOT / "workflow" / "kinds.py"]
    return "\n".join(f.read_text() for f in files)


def test_rules_never_parse_parameters_out_of_a_file_name():
    text = _workflow_text()
    assert not re.search(r"wildcards?\.\w+\.split|wc\.\w+\.split|wc\[\d\]\.split", text)
    assert "self.table(kind)[name]" in text  # parameters are looked up by name (kinds.Runs.lookup)


def test_conflicting_declarations_of_one_run_are_refused():
    group = {"name": "r{seed}", "fixed": {"lr": 0.1}, "grid": {"seed": [0, 0]}}
    assert list(study.expand(group)) == ["r0"]
    with pytest.raises(ValueError, match="different parameters"):
        study.expand({"name": "r", "grid": {"lr": [0.1, 0.2]}})
    with pytest.raises(ValueError, match="string"):
        study.expand({"name": "r", "fixed": {"lr": "5e-4"}})


TINY = """
import json
RUNS = json.load(open("runs.json"))
rule all:
    input: "report.txt"
rule run:
    output: "out/{name}.txt"
    params: p=lambda wc: json.dumps(RUNS[wc.name], sort_keys=True), code=config.get("code", "c1")
    shell: "echo {params.p:q} > {output}"
rule report:  # as in workflow/Snakefile: ancient inputs, the runs' keys in its params
    input: ancient(expand("out/{name}.txt", name=sorted(RUNS)))
    output: "report.txt"
    params: upstream=json.dumps([RUNS, config.get("code", "c1")], sort_keys=True)
    shell: "cat {input} > {output}"
"""


def _snake(folder, *extra, dry=True):
    out = subprocess.run(SNAKEMAKE + ["--rerun-triggers", "params", "input", "code", "software-env", "--cores", "1",
                                      *(["--dry-run"] if dry else ["--quiet"]), *extra],
                         cwd=folder, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"(?m)^    output: (\S+)", out.stdout))


def _set(folder, runs):
    (folder / "runs.json").write_text(json.dumps(runs))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs a shell")
def test_a_changed_parameter_or_code_hash_reruns_that_run_then_its_report_only(tmp_path):
    """A run whose parameters change reruns, and only it; the report that reads it (its inputs are
    ancient(), its params carry the runs' keys) follows in the next pass, which is why the Makefile
    calls Snakemake until a dry run finds nothing to do."""
    (tmp_path / "Snakefile").write_text(textwrap.dedent(TINY))
    _set(tmp_path, {"a": {"lr": 0.1}, "b": {"lr": 0.2}})
    _snake(tmp_path, dry=False)
    assert _snake(tmp_path) == set()
    _set(tmp_path, {"a": {"lr": 0.1}, "b": {"lr": 0.3}})
    assert _snake(tmp_path) == {"out/b.txt"}
    _snake(tmp_path, dry=False)
    assert _snake(tmp_path) == {"report.txt"}
    _snake(tmp_path, dry=False)
    assert _snake(tmp_path) == set()
    assert _snake(tmp_path, "--config", "code=c2") == {"out/a.txt", "out/b.txt"}  # a code change reruns every run


CHOICE = """
import json
RUNS = json.load(open("runs.json"))
CODE = config.get("code", "c1")
rule all:
    input: "consumer.txt"
rule run:
    output: "out/{name}.txt"
    params: p=lambda wc: json.dumps(RUNS[wc.name], sort_keys=True), code=CODE
    shell: "echo {params.p:q} {params.code} > {output}"
rule choose:  # as rule choose in workflow/Snakefile: the candidates are NOT ancient
    input: CANDIDATES
    output: "choice.txt"
    params: upstream=json.dumps([RUNS, CODE], sort_keys=True)
    shell: "cat {input} > {output}"
rule notebook:  # as rule notebook: the run's notebook, made again when the code changes
    output: "consumer.ipynb"
    params: code=CODE
    shell: "echo {params.code} > {output}"
rule consumer:  # a run that reads its notebook and the choice (ancient), the choice's key in its params
    input: nb="consumer.ipynb", choice=ancient("choice.txt")
    output: "consumer.txt"
    params: upstream=json.dumps([RUNS, CODE], sort_keys=True), code=CODE
    shell: "cat {input.choice} > {output}"
"""


def _until_done(folder, *extra):
    for _ in range(5):  # as the Makefile's snake_until_done
        _snake(folder, *extra, dry=False)
        if not _snake(folder, *extra):
            return
    raise AssertionError("still something to do after 5 passes")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs a shell")
@pytest.mark.parametrize("candidates,fresh", [('expand("out/{name}.txt", name=sorted(RUNS))', True),
                                              ('ancient(expand("out/{name}.txt", name=sorted(RUNS)))', False)])
def test_a_run_never_reads_a_choice_older_than_its_candidates(tmp_path, candidates, fresh):
    """A code change reruns the candidates of a choice and the run that reads it in the same pass.
    Snakemake does not check the params of jobs downstream of a job it reruns, so with ancient
    candidates (the second case, kept to show why) the choice is remade only a pass later, after
    the run read the old one, and nothing ever reruns that run."""
    (tmp_path / "Snakefile").write_text(textwrap.dedent(CHOICE).replace("CANDIDATES", candidates))
    _set(tmp_path, {"a": {"lr": 0.1}, "b": {"lr": 0.2}})
    _until_done(tmp_path)
    assert (tmp_path / "consumer.txt").read_text() == (tmp_path / "choice.txt").read_text()
    _until_done(tmp_path, "--config", "code=c2")
    assert "c2" in (tmp_path / "choice.txt").read_text()
    assert ((tmp_path / "consumer.txt").read_text() == (tmp_path / "choice.txt").read_text()) == fresh


def test_the_profiles_use_content_triggers_not_dates():
    for profile in ("default", "slurm"):
        cfg = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
        assert "mtime" not in cfg["rerun-triggers"] and "params" in cfg["rerun-triggers"]
    slurm = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert slurm["executor"] == "slurm" and slurm["set-resources"]["teacher"]["gpu"] == 1
    assert "snake_until_done" in (ROOT / "Makefile").read_text()


def test_stale_lists_runs_whose_recorded_params_or_code_differ_splice_classes_included(tmp_path):
    import stale
    from kdlib.provenance import code_hash, notebook_hash

    cfg = study.load(ROOT / "config" / "study.yaml")
    S_ = study.Study(cfg)
    names = sorted(S_.splice)
    current = {"kdlib_code": code_hash("splice_classes"), "notebook": {"hash": notebook_hash("splice_classes")}}
    for i, n in enumerate(names[:3]):
        params = dict(S_.splice[n])
        prov = dict(current)
        if i == 1:
            params["seed"] = params["seed"] + 10  # recorded with another seed than declared
        if i == 2:
            prov["kdlib_code"] = "0123456789ab"  # made by other kdlib code
        f = tmp_path / "results" / "runs" / "splice_classes" / n / "metrics.json"
        f.parent.mkdir(parents=True)
        f.write_text(json.dumps({"params": params, "provenance": prov}))
    out = stale.check(cfg, tmp_path)["splice_class"]
    assert set(out["stale"]) == set(names[1:3]) and set(out["missing"]) == set(names[3:])
    assert "seed" in out["stale"][names[1]] and "kdlib code" in out["stale"][names[2]]
    # threads 0 is torch's default: a run records the count it resolved to
    assert stale.differences({"threads": 0, "seed": 1}, {"threads": 2, "seed": 1}) == {}
    assert stale.differences({"threads": 1}, {"threads": 2}) == {"threads": (1, 2)}


def test_teacher_logits_are_kept_with_their_run_and_put_back_into_an_empty_cache(tmp_path):
    """A fresh clone has a teacher's metrics.json but no cache: workflow/cached_logits.py keeps each
    logits file the run names beside the run (committed) and restores it; a differing pair is refused."""
    import numpy as np
    results, cache = tmp_path / "results", tmp_path / "cache"
    run = results / "runs" / "teacher"
    run.mkdir(parents=True)
    rel = "teacher_logits/teacher-abc123-train-def456.npz"
    states = "layer_states/teacher-abc123-train.npz"  # a probe's hidden states: too big to keep, not copied
    (run / "metrics.json").write_text(json.dumps({"logits": {"train": {"cache_path": rel, "n": 3}},
                                                  "states": {"train": {"cache_path": states}}}))
    (cache / rel).parent.mkdir(parents=True)
    np.savez(cache / rel, ids=np.arange(3), logits=np.array([0.5, -1.0, 2.0], np.float32))
    (cache / states).parent.mkdir(parents=True)
    np.savez(cache / states, h=np.zeros((3, 2), np.float16))
    env = {**os.environ, "KDLIB_RESULTS": str(results), "KDLIB_CACHE": str(cache)}

    def sync():
        return subprocess.run([sys.executable, str(ROOT / "workflow" / "cached_logits.py")], env=env,
                              capture_output=True, text=True)

    assert "saved 1" in sync().stdout
    kept = run / "logits" / Path(rel).name
    assert kept.read_bytes() == (cache / rel).read_bytes()
    assert sorted(p.name for p in run.rglob("*.npz")) == [kept.name]
    shutil.rmtree(cache)  # a fresh clone
    assert "restored 1" in sync().stdout
    assert (cache / rel).read_bytes() == kept.read_bytes()
    assert sync().stdout == ""  # nothing missing either way: nothing done
    np.savez(cache / rel, ids=np.arange(3), logits=np.zeros(3, np.float32))
    before = kept.read_bytes()
    out = sync()
    assert out.returncode != 0 and "differ" in out.stderr
    assert kept.read_bytes() == before


def test_the_workflow_syncs_cached_logits_around_every_invocation():
    text = (ROOT / "workflow" / "Snakefile").read_text()
    for handler in ("onstart", "onsuccess", "onerror"):
        assert re.search(rf"(?m)^{handler}:\n    shell\(CACHED_LOGITS\)", text), handler


def test_importing_kdlib_puts_kept_logits_back_into_an_empty_cache_and_no_run_key_sees_it(tmp_path):
    """A notebook opened by hand on a fresh clone (no cache) finds its teacher's logits: importing
    kdlib restores the copies kept beside the runs (kdlib/kept_logits.py). That module is reached by
    no notebook, so it is part of no run's key (it copies files, it computes nothing)."""
    import numpy as np
    from kdlib import provenance
    results, cache = tmp_path / "results", tmp_path / "cache"
    rel = "teacher_logits/t-abc123-test-def456.npz"
    kept = results / "runs" / "t" / "logits" / Path(rel).name
    kept.parent.mkdir(parents=True)
    (kept.parent.parent / "metrics.json").write_text(json.dumps({"logits": {"test": {"cache_path": rel}}}))
    np.savez(kept, ids=np.arange(3), logits=np.array([0.5, -1.0, 2.0], np.float32))
    env = {**os.environ, "KDLIB_RESULTS": str(results), "KDLIB_CACHE": str(cache)}
    code = "import kdlib.kept_logits as k; print(len(k.RESTORED))"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "1" and (cache / rel).read_bytes() == kept.read_bytes()
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "0"  # nothing missing: nothing copied
    # a cached file is never overwritten (the workflow's sync refuses a differing pair: the test above)
    np.savez(cache / rel, ids=np.arange(3), logits=np.zeros(3, np.float32))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "0" and np.load(cache / rel)["logits"].tolist() == [0.0, 0.0, 0.0]
    for notebook in sorted((ROOT / "notebooks").glob("*.py")):
        assert not any(m == "kept_logits" for m, _ in provenance.used_code(notebook)), notebook.name


# ---- the registry of run kinds (workflow/kinds.py) --------------------------------------------------
def _runs(S):
    import kinds
    fake = {nb: f"h_{nb}" for nb in {k.notebook for k in kinds.KINDS.values()}}
    return kinds.Runs(S, fake, fake, {"imdb": "d_imdb", "splice": "d_splice"})


def test_every_table_of_runs_has_one_kind_and_every_kind_a_rule_in_the_workflow(S):
    import kinds
    tables = {"teachers", "transfer", "students", "choices", "pu", "splice", "kinds", "snapshot_params", "multi",
              "probes", "layer_students", "transformers", "latency"}
    assert sorted(k.runs for k in kinds.KINDS.values()) == sorted(tables)  # one kind per table, none twice
    text = _workflow_text()
    for k in kinds.KINDS.values():
        assert (ROOT / "notebooks" / f"{k.notebook}.py").exists(), k.rule
        # a generated rule is made by rules/runs.smk's loop; a hand-written one is in its study's file
        assert k.generated or re.search(rf"(?m)^rule {k.rule}:", text), k.rule
        for name in list(k.table(S))[:3]:
            assert k.path(name).startswith("results/") and name in k.path(name)
    for rule, report in kinds.REPORTS.items():
        assert re.search(rf"(?m)^rule {rule}:", text) and (ROOT / "notebooks" / f"{report.notebook}.py").exists()
    # the shell line of the run rules is written once
    assert text.count('"{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"') <= 2 + len(kinds.REPORTS)


def test_a_runs_inputs_and_upstream_keys_come_from_one_declaration(S):
    """The runs a run reads are its input files (ancient) and their keys its `upstream` params, role
    for role; the runs it only waits for are inputs without a key; a choice's candidates are not ancient."""
    R = _runs(S)
    n = "gru_h64_soft_xall_s0"  # teacher, transfer set, choice
    ins, up = R.inputs("student", n), R.upstream_param("student", n)
    assert list(ins) == list(up) == ["teacher", "transfer", "choice"]
    assert ins["teacher"] == ("results/runs/teacher/metrics.json", True)
    assert ins["transfer"] == ("results/runs/teacher/transfer.json", True) and up["transfer"] == R.key("teacher_transfer", "teacher")
    assert ins["choice"] == ("results/choices/kd_gru.json", True) and up["choice"] == R.key("choose", "kd_gru")
    steps = "gru_h64_scratch_steps_s0"
    assert R.upstream_param("student", steps)["match_steps"] == R.key("student", n)
    files, old = R.inputs("choose", "lr_gru")["candidates"]
    assert not old and len(files) == 4 and R.upstream_param("choose", "lr_gru") == [R.key("student", c) for c in S.choices["lr_gru"]["candidates"]]
    # order only: a PU run waits for the run that trains its teacher; a snapshot for the one before
    follower = next(n for n in S.pu if n in S.pu_leader)
    assert R.inputs("pu_run", follower) == {"first": (f"results/runs/pu/{S.pu_leader[follower]}/metrics.json", True)}
    assert R.upstream("pu_run", follower) == {}
    assert R.inputs("teacher_snapshot", "teacher_snap2")["before"] == (["results/runs/teacher_snap1/metrics.json"], True)
    assert "before" not in R.upstream_param("teacher_snapshot", "teacher_snap2")
    # a role a run has not: no input, None in its key (as the keys were first made)
    multi = next(iter(S.multi))
    assert set(R.inputs("multi_student", multi)) == {"teachers", "choice"}
    none = "teacher_again/gru_h64_none_s0"
    assert R.upstream_param("transformer_student", "minilm3_a0_h0_s0")["layers"] is None
    assert "layers" in R.inputs("layer_student", none)  # a layer student reads the layers, whatever its weight


def test_a_change_upstream_changes_the_key_of_every_run_that_reads_it():
    import copy
    cfg = study.load(ROOT / "config" / "study.yaml")
    before = _runs(study.Study(cfg))
    changed = copy.deepcopy(cfg)
    changed["imdb"]["teachers"]["teacher"]["lr"] = 1e-5  # the main teacher: every run that reads it, and on
    after = _runs(study.Study(changed))
    same = lambda kind, n: before.key(kind, n) == after.key(kind, n)  # noqa: E731
    assert not same("teacher", "teacher") and same("teacher", "teacher_T2")
    assert not same("teacher_transfer", "teacher") and not same("student", "gru_h64_soft_xall_s0")
    assert not same("choose", "kd_gru")  # its candidates read the teacher
    assert not same("student", "gru_h16_scratch_s0")  # reads the teacher (its splits, alpha 0) and the lr choice
    assert not same("teacher_kind", "teacher_nbsvm") and not same("multi_student", next(iter(before.S.multi)))
    assert same("pu_run", next(iter(before.S.pu))) and same("splice_class", "splice_ei_s0")


# ---- config/study.schema.yaml -----------------------------------------------------------------------
SCHEMA = ROOT / "config" / "study.schema.yaml"


def test_the_config_validates_against_its_schema_and_the_workflow_checks_it():
    from snakemake.utils import validate
    validate(study.load(ROOT / "config" / "study.yaml"), str(SCHEMA), set_default=False)
    assert 'validate(config, str(ROOT / "config" / "study.schema.yaml")' in (ROOT / "workflow" / "Snakefile").read_text()


@pytest.mark.parametrize("path,typo", [(("imdb",), ("students", "studnets")),
                                        (("imdb", "students", "groups", "scratch"), ("grid", "gird")),
                                        (("pu", "groups", "splice"), ("fixed", "fxied")),
                                        (("imdb", "choices", "kd"), ("metric", "metirc")),
                                        ((), ("multi", "mutli")),
                                        (("layers",), ("transformer", "transformers"))])
def test_a_misspelt_section_or_group_key_fails_naming_it(path, typo):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate
    cfg = study.load(ROOT / "config" / "study.yaml")
    node = cfg
    for step in path:
        node = node[step]
    right, wrong = typo
    node[wrong] = node.pop(right)
    with pytest.raises(WorkflowError, match=rf"'{wrong}' was unexpected"):
        validate(cfg, str(SCHEMA), set_default=False)


def test_run_parameters_stay_open_to_the_schema():
    from snakemake.utils import validate
    cfg = study.load(ROOT / "config" / "study.yaml")
    cfg["imdb"]["students"]["groups"]["scratch"]["fixed"]["any_parameter"] = 1  # the notebook's checks catch these
    cfg["imdb"]["teachers"]["teacher"]["any_parameter"] = 1
    validate(cfg, str(SCHEMA), set_default=False)


def test_machine_spread_checks_every_run_before_any_compute(tmp_path):
    import machine_spread

    with pytest.raises(SystemExit, match=r"'no_such_run' is not a declared student run"):
        machine_spread.plan(["no_such_run", "gru_h64_scratch_s0"])
    todo = machine_spread.plan(["gru_h64_scratch_s0"])  # committed and current: its declared parameters
    assert todo["gru_h64_scratch_s0"]["name"] == "gru_h64_scratch_s0" and todo["gru_h64_scratch_s0"]["alpha"] == 0
    # a copy of the repository whose record disagrees with the config: named, nothing run
    root = tmp_path / "repo"
    (root / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "study.yaml", root / "config" / "study.yaml")
    run = root / "results" / "runs" / "students" / "gru_h64_scratch_s0"
    run.mkdir(parents=True)
    rec = json.loads((ROOT / "results/runs/students/gru_h64_scratch_s0/metrics.json").read_text())
    rec["params"]["patience"] = 9
    (run / "metrics.json").write_text(json.dumps(rec))
    with pytest.raises(SystemExit, match=r"is stale .*'patience'"):
        machine_spread.plan(["gru_h64_scratch_s0"], root=root)
    with pytest.raises(SystemExit, match="has no record"):
        machine_spread.plan(["cnn_h64_scratch_s0"], root=root)
