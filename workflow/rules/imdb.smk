# Study 1, IMDB: its targets, the transfer-set labelling, the report, the benchmark. Its teachers,
# choices and students are run rules of the registry (rules/runs.smk).
IMDB = S.parts["imdb"]  # the section's teachers, choices, students
MAIN_TEACHER = S.transfer["name"]  # the teacher that labels the transfer set (and the benchmark's)


rule imdb:
    """Study 1: teacher, transfer set, lr choices, every student, the report."""
    input:
        "results/tables/students.md",
        out("student", IMDB["students"]),


rule teachers:
    """Every teacher of study 1 (fine-tuned, logits cached)."""
    input:
        out("teacher", IMDB["teachers"]),


rule students:
    """Every student run of study 1 (choice sweeps included)."""
    input:
        out("student", IMDB["students"]),


rule choices:
    """Every choice of study 1 made on validation (results/choices/) and the sweeps it reads."""
    input:
        choice_out(IMDB["choices"]),


rule teacher_transfer:
    """The trained teacher labels transfer_n unlabelled reviews (a KD transfer set). It adds them to
    the teacher's metrics.json; transfer.json records what was labelled."""
    input:
        nb=nb("teacher", "teacher_transfer"),
        **upstream_inputs("teacher_transfer", MAIN_TEACHER),
    output:
        out("teacher_transfer", MAIN_TEACHER),
    log:
        "cache/executed/teacher_transfer.ipynb",
    params:
        run=nb_params(S.transfer),
        n=S.transfer["transfer_n"],
        code=CODE["teacher"],
        notebook=NB_HASH["teacher"],
        data=DATA_HASH["imdb"],
        upstream=R.upstream_param("teacher_transfer", MAIN_TEACHER),
    threads: threads_for(S.transfer.get("threads", 0))
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q} && "
        "{PY} workflow/mark_transfer.py {input.teacher} {params.n} {output}"


rule report:
    """Tables, figures and the study page of study 1 (and README's headline block) from every reported student."""
    input:
        nb=nb("report", "report"),
        teachers=ancient(out("teacher", IMDB["teachers"])),
        transfer=ancient(out("teacher_transfer", MAIN_TEACHER)),
        choices=ancient(choice_out(IMDB["choices"])),
        runs=ancient(out("student", IMDB["students"])),
    output:
        "results/tables/students.md",
        "results/tables/students.csv",
        "results/tables/student_runs.csv",
        "results/tables/transfer.csv",
        "results/tables/findings.md",
        "results/imdb.md",
    log:
        "cache/executed/report.ipynb",
    params:
        run=report_params("report"),
        code=CODE["report"],
        notebook=NB_HASH["report"],
        upstream={"teachers": dict(zip(IMDB["teachers"], keys("teacher", IMDB["teachers"]))),
                  "transfer": R.key("teacher_transfer", MAIN_TEACHER),
                  "choices": key(keys("choose", IMDB["choices"])), "runs": key(keys("student", IMDB["students"]))},
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"


rule benchmark:
    """Our student epoch against a naive loop; the teacher's fine-tune throughput (not in `all`)."""
    input:
        script=ancient("scripts/benchmark.py"),
        teacher=ancient(teacher_out(MAIN_TEACHER)),
    output:
        "results/benchmark.md",
    params:
        code=provenance.code_hash(ROOT / "scripts" / "benchmark.py"),
        script=provenance.file_hash(ROOT / "scripts" / "benchmark.py"),
        upstream={"teacher": R.key("teacher", MAIN_TEACHER)},
    threads: max(1, workflow.cores or 1)
    shell:
        "{ENV} {PY} {input.script}"
