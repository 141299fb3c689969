# Study 3, binary vs eight classes (and splice junctions): its targets and its report. Its teachers,
# choices and students are study 1's kinds; its splice runs the registry's splice_class kind.
RATING = S.parts.get("rating")
RATING_READS = kinds.rating_reads(S)


rule rating:
    """Study 3, binary vs eight classes: the rating teacher, its choices, every run, splice, the report."""
    input:
        ["results/tables/rating.md"] if RATING else [],
        out("student", (RATING or {}).get("students", [])),
        out("splice_class", S.splice),


rule splice_classes:
    """Study 3 on splice junctions: three classes vs EI vs rest (every run)."""
    input:
        out("splice_class", S.splice),


rule rating_teachers:
    """The teachers of study 3 (fine-tuned on the star ratings, logits cached)."""
    input:
        out("teacher", (RATING or {}).get("teachers", [])),


rule rating_report:
    """Tables, figures and the study page of study 3 (binary vs eight classes) and README's block."""
    input:
        nb=nb("rating_report", "rating_report"),
        teachers=ancient(out("teacher", RATING_READS["teachers"])),
        choices=ancient(choice_out(RATING_READS["choices"])),
        runs=ancient(out("student", RATING_READS["students"])),
        splice=ancient(out("splice_class", S.splice)),
    output:
        "results/tables/rating.md",
        "results/rating.md",
    log:
        "cache/executed/rating_report.ipynb",
    params:
        run=report_params("rating_report"),
        code=CODE.get("rating_report"),
        notebook=NB_HASH.get("rating_report"),
        upstream={"teachers": dict(zip(RATING_READS["teachers"], keys("teacher", RATING_READS["teachers"]))),
                  "choices": key(keys("choose", RATING_READS["choices"])),
                  "runs": key(keys("student", RATING_READS["students"])), "splice": key(keys("splice_class", S.splice))},
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"
