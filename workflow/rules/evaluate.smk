# Evaluation: passage retrieval both ways per model (the protocol: evaluation.split at evaluation.tempo, i.e. the test split, unseen soundfont, ρ = 1), Table 2.

rule evaluate:
    input:
        model=lambda w: EVAL_MODELS[w.model],
        tables=EVAL_TABLES,
        code=stage_code("evaluation.evaluate"),
    output:
        metrics="results/metrics/{model}.json",
        details="results/retrieval/{model}.csv",
    params:
        dataset=data_dir,
        cfg=stage_params(*EVALUATION_KEYS),
    conda:
        "../../environment.yml"
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "logs/benchmarks/evaluate/{model}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m pipeline.evaluation.evaluate --model {input.model} --dataset {params.dataset}"
        " --out {output.metrics} --details {output.details} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule table2:
    input:
        metrics=expand("results/metrics/{model}.json", model=list(EVAL_MODELS)),
        code=stage_code("evaluation.tables"),
    output:
        csv=report("results/tables/table2.csv", caption="../report/table2.rst", category="Results"),
        md="results/tables/table2.md",
    conda:
        "../../environment.yml"
    log:
        "logs/tables/table2.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.tables {input.metrics} --out results/tables/table2 > {log} 2>&1"


rule snippet_retrieval:
    input:
        model="models/{snippet_model}/model.pt",
        tables=split_tables([config["evaluation"]["split"]], ["pieces", "performances", "passages", "snippets"]),
        code=stage_code("evaluation.snippet_retrieval"),
    output:
        metrics="results/snippet_retrieval/{snippet_model}.json",
    params:
        dataset=data_dir,
        cfg=stage_params("seed", "training", "evaluation", "snippet_retrieval"),
    conda:
        "../../environment.yml"
    log:
        "logs/snippet_retrieval/{snippet_model}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m pipeline.evaluation.snippet_retrieval --model {input.model} --dataset {params.dataset}"
        " --out {output.metrics} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule snippet_table:
    input:
        metrics=expand("results/snippet_retrieval/{snippet_model}.json", snippet_model=["snippet", "snippet_cca"]),
        code=stage_code("evaluation.tables"),
    output:
        csv="results/tables/snippet_retrieval.csv",
        md=report("results/tables/snippet_retrieval.md", caption="../report/snippet_retrieval.rst", category="Results"),
    conda:
        "../../environment.yml"
    log:
        "logs/tables/snippet_retrieval.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.tables {input.metrics} --out results/tables/snippet_retrieval > {log} 2>&1"


rule evaluation:
    input:
        rules.table2.output,
        rules.snippet_table.output,
