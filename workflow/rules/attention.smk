# Snippet-model variants: audio context x attention (issue 14), their snippet retrieval at every test tempo,
# the context x attention table and the attention analysis. An optional target, not part of `all`:
#   snakemake --cores all attention
# so it is not in dvc.yaml either (compiled from `all`: `dvc repro` would otherwise train every variant).

from pipeline.core.variants import snippet_variant_keys, snippet_variant_model, trained_snippet_variants

SNIPPET_VARIANTS = config["snippet_variants"]
TRAINED_VARIANTS = trained_snippet_variants(SNIPPET_VARIANTS)   # a variant equal to the default model reuses models/snippet
TEST_TABLES = expand("data/dataset/{split}/{table}.csv", split=[config["evaluation"]["split"]],
                     table=["pieces", "performances", "passages", "snippets"])


rule train_snippet_variant:
    input:
        tables=DATASET_TABLES,
        code=stage_code("models.train_snippet"),
    output:
        model="models/snippet_variant/{sv}/model.pt",
        metrics="models/snippet_variant/{sv}/metrics.json",
        live=directory("results/training/snippet_variant/{sv}"),
    wildcard_constraints:
        sv="|".join(TRAINED_VARIANTS) or "NO_VARIANT",
    params:
        cfg=lambda w: stage_params(*snippet_variant_keys(SNIPPET_VARIANTS, w.sv)),
    conda:
        "../../environment.yml"
    log:
        "logs/train/snippet_variant/{sv}.log",
    benchmark:
        "logs/benchmarks/train/snippet_variant/{sv}.tsv"
    threads: TRAINING_THREADS
    resources:
        mem_mb=16000,
        runtime=24 * 60,
    shell:
        "python -m pipeline.models.train_snippet --variant {wildcards.sv} --dataset data/dataset"
        " --out models/snippet_variant/{wildcards.sv} --live {output.live}"
        " --checkpoint checkpoints/snippet_variant_{wildcards.sv}.pt --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule refine_cca_variant:
    input:
        tables=DATASET_TABLES,
        snippet="models/snippet_variant/{sv}/model.pt",
        code=stage_code("models.refine_cca"),
    output:
        model="models/snippet_variant_cca/{sv}/model.pt",
        metrics="models/snippet_variant_cca/{sv}/metrics.json",
    wildcard_constraints:
        sv="|".join(TRAINED_VARIANTS) or "NO_VARIANT",
    params:
        cfg=stage_params("seed", "training", "train_snippet", "refine_cca"),
    conda:
        "../../environment.yml"
    log:
        "logs/train/snippet_variant_cca/{sv}.log",
    benchmark:
        "logs/benchmarks/train/snippet_variant_cca/{sv}.tsv"
    threads: TRAINING_THREADS
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "python -m pipeline.models.refine_cca --dataset data/dataset --snippet-model {input.snippet}"
        " --out models/snippet_variant_cca/{wildcards.sv} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule snippet_variant_retrieval:
    input:
        model=lambda w: snippet_variant_model(SNIPPET_VARIANTS, w.sv),
        tables=TEST_TABLES,
        code=stage_code("evaluation.snippet_retrieval"),
    output:
        metrics="results/snippet_variants/{sv}.json",
    wildcard_constraints:
        sv="|".join(sorted(SNIPPET_VARIANTS)),
    params:
        cfg=stage_params("seed", "training", "evaluation", "snippet_retrieval", "snippet_variants", "render.test_tempo_ratios"),
    conda:
        "../../environment.yml"
    log:
        "logs/snippet_retrieval/variant_{sv}.log",
    benchmark:
        "logs/benchmarks/snippet_retrieval/variant_{sv}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m pipeline.evaluation.snippet_retrieval --variant {wildcards.sv} --model {input.model} --dataset data/dataset"
        " --out {output.metrics} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule snippet_variant_table:
    input:
        metrics=expand("results/snippet_variants/{sv}.json", sv=list(SNIPPET_VARIANTS)),
        code=stage_code("evaluation.attention"),
    output:
        csv="results/tables/snippet_variants.csv",
        md=report("results/tables/snippet_variants.md", caption="../report/snippet_variants.rst", category="Attention"),
        tempo_csv="results/tables/snippet_variants_tempo.csv",
        tempo_md="results/tables/snippet_variants_tempo.md",
        context_png=report("results/attention/mrr_vs_context.png", caption="../report/snippet_variants.rst", category="Attention"),
        tempo_png=report("results/attention/mrr_vs_tempo.png", caption="../report/snippet_variants.rst", category="Attention"),
    conda:
        "../../environment.yml"
    log:
        "logs/tables/snippet_variants.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.attention table {input.metrics} --tables results/tables/snippet_variants"
        " --figures results/attention > {log} 2>&1"


rule attention_analysis:
    input:
        model=snippet_variant_model(SNIPPET_VARIANTS, config["attention"]["analysis"]["variant"]),
        tables=TEST_TABLES,
        code=stage_code("evaluation.attention"),
    output:
        json="results/attention/analysis.json",
        png=report("results/attention/analysis.png", caption="../report/attention_analysis.rst", category="Attention"),
    params:
        cfg=stage_params("seed", "training", "evaluation", "snippet_retrieval", "snippet_variants", "attention.analysis",
                         "render.test_tempo_ratios"),
    conda:
        "../../environment.yml"
    log:
        "logs/attention/analysis.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "python -m pipeline.evaluation.attention analysis --model {input.model} --dataset data/dataset"
        " --out results/attention/analysis --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule attention:
    input:
        rules.snippet_variant_table.output,
        rules.attention_analysis.output,
