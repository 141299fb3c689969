# Study 4, several teachers: its targets and its report. Its teachers (teacher_kind,
# teacher_snapshot) and students (multi_student) are the registry's kinds (rules/runs.smk).
MULTI_CHOICES = sorted(set(S.multi_choice.values()))
MULTI_TEACHERS = S.multi_report.get("teachers", [])
# study 1's teacher alone is study 1's kd-sweep student of the chosen (T, alpha) at hidden 64: the report reads them
MULTI_STUDY1 = [n for c in MULTI_CHOICES for n in S.choices[c]["candidates"] if n.split("_")[1] == "h64"] if S.multi else []


rule multi:
    """Study 4, several teachers: the teachers beside study 1's, every multi-teacher student, the report."""
    input:
        ["results/tables/multi_findings.md"] if S.multi else [],
        out("multi_student", S.multi),


rule multi_teachers:
    """Study 4's teacher pool (the other teacher kinds and the snapshot ensemble; study 1's teacher)."""
    input:
        [teacher_out(n) for n in S.pool] if S.multi else [],


# what multi_report reads, by key: its params, and those of a report that reads its tables (layers_report)
MULTI_UPSTREAM = {"teachers": {t: R.key(*kinds.teacher_run(S, t)) for t in MULTI_TEACHERS},
                  "choices": key(keys("choose", MULTI_CHOICES)), "runs": key(keys("multi_student", S.multi)),
                  "study1": key(keys("student", MULTI_STUDY1))}


rule multi_report:
    """Tables, figures and the study page of study 4 (several teachers) and README's block."""
    input:
        nb=nb("multi_report", "multi_report"),
        teachers=ancient([teacher_out(t) for t in MULTI_TEACHERS]),
        choices=ancient(choice_out(MULTI_CHOICES)),
        runs=ancient(out("multi_student", S.multi)),
        study1=ancient(out("student", MULTI_STUDY1)),
    output:
        "results/tables/multi_findings.md",
        "results/tables/multi_students.md",
        "results/tables/multi_singles.md",
        "results/tables/multi_fused.csv",  # read by layers_report (the ensemble beside the frontier)
        "results/multi.md",
    log:
        "cache/executed/multi_report.ipynb",
    params:
        run=report_params("multi_report"),
        code=CODE.get("multi_report"),
        notebook=NB_HASH.get("multi_report"),
        upstream=MULTI_UPSTREAM,
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"
