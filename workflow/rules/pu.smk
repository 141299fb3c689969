# Study 2, PU: its targets and its report. Its runs are the registry's pu_run kind (rules/runs.smk:
# pu_run on a CPU, pu_run_gpu for the runs with a transformer teacher).


rule pu:
    """Study 2: both PU grids and the PU report."""
    input:
        "results/tables/pu_summary.md",
        out("pu_run", S.reported_pu),


rule pu_report:
    """Tables, figures and the study page of study 2 (and README's PU block) from every reported PU run."""
    input:
        nb=nb("pu_report", "pu_report"),
        runs=ancient(out("pu_run", S.reported_pu)),
    output:
        "results/pu.md",
        "results/tables/pu_summary.md",
        "results/tables/pu_summary.csv",
        "results/tables/pu_runs.csv",
    log:
        "cache/executed/pu_report.ipynb",
    params:
        run=report_params("pu_report"),
        code=CODE["pu_report"],
        notebook=NB_HASH["pu_report"],
        upstream={"runs": key(keys("pu_run", S.reported_pu))},
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"
