# Models: snippet baseline (pretraining) -> CCA refinement -> passage model variants.
# Checkpoints live in checkpoints/ (not outputs, so a killed job resumes instead of restarting).

rule train_snippet:
    input:
        tables=DATASET_TABLES,
        code=stage_code("models.train_snippet"),
    output:
        model="models/snippet/model.pt",
        metrics="models/snippet/metrics.json",
        live=directory("results/training/snippet"),
    params:
        dataset=data_dir,
        cfg=stage_params("seed", "training", "train_snippet"),
    conda:
        "../../environment.yml"
    log:
        "logs/train/snippet.log",
    benchmark:
        "logs/benchmarks/train/snippet.tsv"
    priority: 20  # the critical path (snippet -> CCA -> variants): before jobs that could wait
    threads: TRAINING_THREADS
    resources:
        mem_mb=16000,
        runtime=24 * 60,
    shell:
        "python -m pipeline.models.train_snippet --dataset {params.dataset} --out models/snippet --live {output.live}"
        " --checkpoint checkpoints/snippet.pt --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule refine_cca:
    input:
        tables=DATASET_TABLES,
        snippet="models/snippet/model.pt",
        code=stage_code("models.refine_cca"),
    output:
        model="models/snippet_cca/model.pt",
        metrics="models/snippet_cca/metrics.json",
    params:
        dataset=data_dir,
        cfg=stage_params("seed", "training", "train_snippet", "refine_cca"),
    conda:
        "../../environment.yml"
    log:
        "logs/train/snippet_cca.log",
    benchmark:
        "logs/benchmarks/train/snippet_cca.tsv"
    priority: 10
    threads: TRAINING_THREADS
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "python -m pipeline.models.refine_cca --dataset {params.dataset} --snippet-model {input.snippet} --out models/snippet_cca"
        " --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule train_passage:
    input:
        tables=DATASET_TABLES,
        init=variant_init,
        code=stage_code("models.train_passage"),
    output:
        model="models/passage/{variant}/model.pt",
        metrics="models/passage/{variant}/metrics.json",
        live=directory("results/training/{variant}"),
    params:
        dataset=data_dir,
        cfg=lambda w: stage_params("seed", "training", "train_passage", f"passage_variants.{w.variant}"),
        init=init_arg,
    conda:
        "../../environment.yml"
    log:
        "logs/train/{variant}.log",
    benchmark:
        "logs/benchmarks/train/{variant}.tsv"
    # Before the sweep points, which reuse the frozen features an FZ variant leaves in checkpoints/: the
    # sweep's own variant first, with the whole machine, as it computes those features. Every other
    # pretrained variant runs with PASSAGE_THREADS (two at a time locally): the FT variants, and the
    # other FZ variant, which starts after it and reuses its features. A variant from scratch needs no
    # snippet model; below the pretraining's priority it starts after it, beside the other variants with
    # PASSAGE_THREADS (with the whole machine it waited for two free cores and ended last: 1 min 22 s
    # plus its tempo evaluation on the tail of a local run).
    priority: lambda w: 6 if variant_computes_features(w) else 5
    threads: lambda w: TRAINING_THREADS if variant_computes_features(w) else PASSAGE_THREADS
    resources:
        mem_mb=16000,
        runtime=24 * 60,
    shell:
        "python -m pipeline.models.train_passage --variant {wildcards.variant} --dataset {params.dataset} {params.init}"
        " --out models/passage/{wildcards.variant} --live {output.live}"
        " --checkpoint checkpoints/{wildcards.variant}.pt --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule training_curves:
    input:
        live=["results/training/snippet"] + expand("results/training/{variant}", variant=sorted(config["passage_variants"])),
        code=stage_code("evaluation.experiments"),
    output:
        png=report("results/training/curves.png", caption="../report/training_curves.rst", category="Training"),
        csv="results/training/curves.csv",
    conda:
        "../../environment.yml"
    log:
        "logs/train/curves.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.experiments curves {input.live} --out results/training/curves > {log} 2>&1"


rule models:
    input:
        expand("models/passage/{variant}/model.pt", variant=sorted(config["passage_variants"])),
        "models/snippet_cca/model.pt",
        rules.training_curves.output,
