# Evaluation: passage retrieval both ways per model (test split, unseen soundfont, tempo 1.0), Table 2.

EVAL_MODELS = {"bl": f"models/{config['evaluation']['baseline_model']}/model.pt",
               **{v: f"models/passage/{v}/model.pt" for v in config["passage_variants"]}}


rule evaluate:
    input:
        model=lambda w: EVAL_MODELS[w.model],
        tables=expand("data/dataset/test/{table}.csv", table=["pieces", "performances", "passages"]),
        code=stage_code("evaluate"),
    output:
        metrics="results/metrics/{model}.json",
        details="results/retrieval/{model}.csv",
    params:
        cfg=lambda w, threads: small_job_params(threads, "seed", "train_passage", "evaluation"),
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/runs/evaluate/{model}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m pipeline.evaluate --model {input.model} --dataset data/dataset --split test --tempo 1.0"
        " --out {output.metrics} --details {output.details} --params-json {params.cfg:q} > {log} 2>&1"


rule table2:
    input:
        metrics=expand("results/metrics/{model}.json", model=list(EVAL_MODELS)),
        code=stage_code("tables"),
    output:
        csv=report("results/tables/table2.csv", caption="../report/table2.rst", category="Results"),
        md="results/tables/table2.md",
    log:
        "logs/tables/table2.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.tables {input.metrics} --out results/tables/table2 > {log} 2>&1"


rule evaluation:
    input:
        rules.table2.output,
