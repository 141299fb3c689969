# Study 5 (cont.), critical layers and a transformer student: its targets, the latency run (alone on
# every core: hand-written) and its report. The probes (teacher_layer), layer and transformer
# students are the registry's kinds (rules/runs.smk).
LAYERS_TEACHERS = kinds.layers_teachers(S)


rule layers:
    """Study 5's critical layers and transformer student: the probes, the layer and transformer students, the report."""
    input:
        ["results/tables/layers_findings.md"] if S.probes else [],


rule layers_probes:
    """A linear probe on every layer of each teacher, and its layers' pooled states cached."""
    input:
        out("teacher_layer", S.probes),


rule transformer:
    """The MiniLM students cut to every other layer: fine-tuned, distilled, distilled with hidden states."""
    input:
        out("transformer_student", S.transformers),


rule latency:
    """Every model of the frontier timed on the same test reviews at one thread, the machine to itself: results/runs/latency/."""
    input:
        nb=nb("latency", "latency"),
        **(upstream_inputs("latency", "latency") if S.latency else {"teacher": []}),
    output:
        "results/runs/latency/metrics.json",
    log:
        "cache/executed/latency.ipynb",
    params:
        run=nb_params(S.latency),
        code=CODE["latency"],
        notebook=NB_HASH["latency"],
        data=DATA_HASH["imdb"],
        upstream=R.upstream_param("latency", "latency") if S.latency else {},
    threads: max(1, workflow.cores or 1)  # alone: nothing beside it disturbs the timing
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"


rule layers_report:
    """Tables and figures of the critical layers, the transformer student and the frontier; README's block."""
    input:
        nb=nb("layers_report", "layers_report"),
        teachers=ancient(out("teacher", LAYERS_TEACHERS) + out("teacher_layer", S.probes)),
        latency=ancient(out("latency", ["latency"]) if S.latency else []),
        choices=ancient(choice_out(IMDB["choices"])),
        runs=ancient(out("layer_student", S.layer_students) + out("transformer_student", S.transformers)
                     + out("student", IMDB["students"])),
        multi=ancient(["results/tables/multi_fused.csv"] if S.multi else []),  # study 4's fused teachers (multi_report)
    output:
        "results/tables/layers_findings.md",
        "results/tables/frontier.md",
        "results/layers.md",
    log:
        "cache/executed/layers_report.ipynb",
    params:
        run=report_params("layers_report"),
        code=CODE.get("layers_report"),
        notebook=NB_HASH.get("layers_report"),
        upstream={"teachers": dict(zip(LAYERS_TEACHERS, keys("teacher", LAYERS_TEACHERS))),
                  "probes": dict(zip(S.probes, keys("teacher_layer", S.probes))),
                  "latency": R.key("latency", "latency") if S.latency else None,
                  "choices": key(keys("choose", IMDB["choices"])),
                  "runs": key(keys("layer_student", S.layer_students) + keys("transformer_student", S.transformers)
                              + keys("student", IMDB["students"])),
                  # multi_fused.csv: multi_report's code and everything it reads (its teachers' logits above all)
                  "multi": key(CODE.get("multi_report"), NB_HASH.get("multi_report"), MULTI_UPSTREAM) if S.multi else None},
    shell:
        "{ENV} {PAPERMILL} {input.nb} {log} -y {params.run:q}"
