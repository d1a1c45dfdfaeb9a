# The paper's experiments on the test split: Exp 1 (embedding-dimension sweep), Exp 3 (tempo),
# Exp 4 (distance vs duration) and the top-k sanity figure. Outputs: results/experiments/.

SWEEP = config["experiments"]["dim_sweep"]
TEMPO_MODELS = ["bl", *config["experiments"]["tempo"]["variants"]]
EMBEDDING_MODEL = config["experiments"]["embedding_model"]


rule train_sweep:
    input:
        tables=DATASET_TABLES,
        init=INIT_MODEL[config["passage_variants"][SWEEP["variant"]]["init"]],
        code=stage_code("models.train_passage"),
    output:
        model="models/sweep/d{dim}/model.pt",
        metrics="models/sweep/d{dim}/metrics.json",
        live=directory("results/training/sweep/d{dim}"),
    params:
        dataset=data_dir,
        cfg=stage_params("seed", "training", "train_passage", f"passage_variants.{SWEEP['variant']}",
                         "experiments.dim_sweep"),
        init=init_arg,
        variant=SWEEP["variant"],
    conda:
        "../../environment.yml"
    log:
        "logs/train/sweep_d{dim}.log",
    benchmark:
        "logs/benchmarks/train/sweep_d{dim}.tsv"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=24 * 60,
    shell:
        "python -m pipeline.models.train_passage --dim-sweep --variant {params.variant} --emb-dim {wildcards.dim}"
        " --dataset {params.dataset} {params.init} --out models/sweep/d{wildcards.dim} --live {output.live}"
        " --checkpoint checkpoints/sweep_d{wildcards.dim}.pt --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


# every sweep model in one process (one start-up, the test split loaded once)
rule evaluate_sweep:
    input:
        models=expand("models/sweep/d{dim}/model.pt", dim=SWEEP["emb_dims"]),
        tables=EVAL_TABLES,
        code=stage_code("evaluation.evaluate"),
    output:
        expand("results/experiments/dim_sweep/d{dim}.json", dim=SWEEP["emb_dims"]),
    params:
        dataset=data_dir,
        cfg=stage_params(*EVALUATION_KEYS),
    conda:
        "../../environment.yml"
    log:
        "logs/evaluate/sweep.log",
    benchmark:
        "logs/benchmarks/evaluate/sweep.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m pipeline.evaluation.evaluate --model {input.models} --dataset {params.dataset}"
        " --out {output} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule dim_sweep:
    input:
        metrics=rules.evaluate_sweep.output,
        code=stage_code("evaluation.experiments"),
    output:
        csv=report("results/experiments/dim_sweep.csv", caption="../report/dim_sweep_table.rst", category="Experiments"),
        png=report("results/experiments/dim_sweep.png", caption="../report/dim_sweep.rst", category="Experiments"),
    params:
        cfg=stage_params("experiments.dim_sweep", "evaluation.tempo"),
    conda:
        "../../environment.yml"
    log:
        "logs/experiments/dim_sweep.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.experiments dim-sweep {input.metrics} --out results/experiments/dim_sweep"
        " --params-json {params.cfg:q} > {log} 2>&1"


# one model at every test tempo ratio, in one process
rule evaluate_tempo:
    input:
        model=lambda w: EVAL_MODELS[w.model],
        tables=EVAL_TABLES,
        code=stage_code("evaluation.evaluate"),
    output:
        directory("results/experiments/tempo/{model}"),
    params:
        dataset=data_dir,
        cfg=stage_params(*EVALUATION_KEYS, "render.test_tempo_ratios"),
    conda:
        "../../environment.yml"
    log:
        "logs/evaluate/tempo_{model}.log",
    benchmark:
        "logs/benchmarks/evaluate/tempo_{model}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m pipeline.evaluation.evaluate --model {input.model} --dataset {params.dataset} --tempo test-ratios"
        " --out-dir {output} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule tempo_table:
    input:
        metrics=expand("results/experiments/tempo/{model}", model=TEMPO_MODELS),
        code=stage_code("evaluation.experiments"),
    output:
        csv=report("results/experiments/tempo.csv", caption="../report/tempo.rst", category="Experiments"),
        md="results/experiments/tempo.md",
    params:
        cfg=stage_params("experiments.tempo", "render.test_tempo_ratios"),
    conda:
        "../../environment.yml"
    log:
        "logs/experiments/tempo.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.experiments tempo {input.metrics} --out results/experiments/tempo"
        " --params-json {params.cfg:q} > {log} 2>&1"


rule distance_figure:
    input:
        details=f"results/retrieval/{EMBEDDING_MODEL}.csv",
        code=stage_code("evaluation.experiments"),
    output:
        png=report("results/experiments/distance_vs_duration.png", caption="../report/distance.rst",
                   category="Experiments"),
        csv="results/experiments/distance_vs_duration.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/experiments/distance_vs_duration.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.experiments distance {input.details} --out results/experiments/distance_vs_duration"
        " > {log} 2>&1"


rule sanity_figure:
    input:
        details=f"results/retrieval/{EMBEDDING_MODEL}.csv",
        tables=EVAL_TABLES,
        code=stage_code("evaluation.sanity"),
    output:
        report("results/experiments/retrieval_examples.png", caption="../report/retrieval_examples.rst",
               category="Experiments"),
    params:
        dataset=data_dir,
        cfg=stage_params("evaluation.split", "evaluation.tempo", "experiments.sanity"),
    conda:
        "../../environment.yml"
    log:
        "logs/experiments/retrieval_examples.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "python -m pipeline.evaluation.sanity --details {input.details} --dataset {params.dataset} --out {output}"
        " --params-json {params.cfg:q} > {log} 2>&1"


rule experiments:
    input:
        rules.dim_sweep.output,
        rules.tempo_table.output,
        rules.distance_figure.output,
        rules.sanity_figure.output,
