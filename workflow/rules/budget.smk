# Study 5, the label budget: its targets and its report (its teachers and students are study 1's kinds).
BUDGET = S.parts.get("budget")
# a budget teacher of another initial seed (same n, same reviews) adds to the teacher curve's spread; students read seed 0's
BUDGET_READS = kinds.budget_reads(S)


rule budget:
    """Study 5, the label budget: a teacher per budget, its students, the report."""
    input:
        ["results/tables/budget_findings.md"] if BUDGET else [],
        out("student", (BUDGET or {}).get("students", [])),


rule budget_teachers:
    """Study 5's teachers: MiniLM fine-tuned on n labelled reviews, each labelling the unlabelled pool."""
    input:
        out("teacher", (BUDGET or {}).get("teachers", [])),


rule budget_report:
    """Learning curves of study 5 (every budget's teacher and students, and study 1 as the whole split)."""
    input:
        nb=nb("budget_report", "budget_report"),
        teachers=ancient(out("teacher", BUDGET_READS["teachers"] + BUDGET_READS["teacher_seeds"])),
        choices=ancient(choice_out(BUDGET_READS["choices"])),
        runs=ancient(out("student", BUDGET_READS["students"])),
        study1=ancient(["results/tables/students.csv", "results/tables/transfer.csv"]),  # study 1's p Holm (report)
    output:
        "results/tables/budget_findings.md",
        "results/tables/budget.md",
        "results/budget.md",
    log:
        "cache/executed/budget_report.ipynb",
    params:
        run=report_params("budget_report"),
        code=CODE.get("budget_report"),
        notebook=NB_HASH.get("budget_report"),
        upstream={"teachers": dict(zip(BUDGET_READS["teachers"] + BUDGET_READS["teacher_seeds"],
                                       keys("teacher", BUDGET_READS["teachers"] + BUDGET_READS["teacher_seeds"]))),
                  "choices": key(keys("choose", BUDGET_READS["choices"])),
                  "runs": key(keys("student", BUDGET_READS["students"])), "study1": key(CODE["report"], NB_HASH["report"])},
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"
