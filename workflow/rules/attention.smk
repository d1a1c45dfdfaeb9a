# Snippet-model variants: audio context x attention (issue 14), their snippet retrieval at every test tempo,
# the context x attention table and the attention analysis; downstream (issue 14 item 6), the passage models on a
# snippet variant (attention.passage_variants -> models/passage_att/) and BL with a variant's snippet model
# (attention.baseline_variants), evaluated as Table 2 and shown beside its rows (results/tables/table2_attention.md).
# An optional target, not part of `all`:
#   snakemake --cores all attention
# so it is not in dvc.yaml either (compiled from `all`: `dvc repro` would otherwise train every variant).

from pipeline.core.variants import check_downstream, downstream_init, downstream_label, downstream_models
from pipeline.core.variants import snippet_variant_keys, snippet_variant_model, trained_snippet_variants

SNIPPET_VARIANTS = config["snippet_variants"]
TRAINED_VARIANTS = trained_snippet_variants(SNIPPET_VARIANTS)   # a variant equal to the default model reuses models/snippet
try:
    check_downstream(config)
except ValueError as err:
    sys.exit(f"scorelink: params: {err}")
# downstream (issue 14 item 6): passage models on a snippet variant and BL with a variant's snippet model
ATT_PASSAGE = config["attention"]["passage_variants"]
ATT_ROWS = downstream_models(config)       # row -> model artifact: bl_<variant> ..., then the passage variants
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


rule train_passage_att:
    input:
        tables=DATASET_TABLES,
        init=lambda w: downstream_init(config, w.pv),
        code=stage_code("models.train_passage"),
    output:
        model="models/passage_att/{pv}/model.pt",
        metrics="models/passage_att/{pv}/metrics.json",
        live=directory("results/training/passage_att/{pv}"),
    wildcard_constraints:
        pv="|".join(sorted(ATT_PASSAGE)) or "NO_VARIANT",
    params:
        dataset=data_dir,
        cfg=lambda w: stage_params("seed", "training", "train_passage", f"attention.passage_variants.{w.pv}",
                                   f"snippet_variants.{ATT_PASSAGE[w.pv]['snippet_variant']}"),
        init=init_arg,
    conda:
        "../../environment.yml"
    log:
        "logs/train/passage_att/{pv}.log",
    benchmark:
        "logs/benchmarks/train/passage_att/{pv}.tsv"
    threads: PASSAGE_THREADS
    resources:
        mem_mb=16000,
        runtime=24 * 60,
    shell:
        "python -m pipeline.models.train_passage --variant {wildcards.pv} --dataset {params.dataset} {params.init}"
        " --out models/passage_att/{wildcards.pv} --live {output.live}"
        " --checkpoint checkpoints/passage_att_{wildcards.pv}.pt --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule evaluate_att:
    input:
        model=lambda w: ATT_ROWS[w.row],
        tables=EVAL_TABLES,
        code=stage_code("evaluation.evaluate"),
    output:
        metrics="results/attention/metrics/{row}.json",
        details="results/attention/retrieval/{row}.csv",
    wildcard_constraints:
        row="|".join(sorted(ATT_ROWS)) or "NO_ROW",
    params:
        dataset=data_dir,
        cfg=stage_params(*EVALUATION_KEYS),
        label=lambda w: downstream_label(config, w.row),
    conda:
        "../../environment.yml"
    log:
        "logs/evaluate/attention/{row}.log",
    benchmark:
        "logs/benchmarks/evaluate/attention/{row}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m pipeline.evaluation.evaluate --model {input.model} --dataset {params.dataset} --label {params.label:q}"
        " --out {output.metrics} --details {output.details} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule table2_attention:
    input:
        # Table 2's rows (the default target's evaluations) with BL's variant rows after BL and the passage variants last
        metrics=["results/metrics/bl.json", *(f"results/attention/metrics/{r}.json" for r in ATT_ROWS if r.startswith("bl_")),
                 *(f"results/metrics/{v}.json" for v in config["passage_variants"]),
                 *(f"results/attention/metrics/{r}.json" for r in ATT_PASSAGE)],
        code=stage_code("evaluation.tables"),
    output:
        csv="results/tables/table2_attention.csv",
        md=report("results/tables/table2_attention.md", caption="../report/table2.rst", category="Attention"),
    conda:
        "../../environment.yml"
    log:
        "logs/tables/table2_attention.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.evaluation.tables {input.metrics} --out results/tables/table2_attention > {log} 2>&1"


rule attention:
    input:
        rules.snippet_variant_table.output,
        rules.attention_analysis.output,
        # Table 2 with the rows on snippet variants (attention.passage_variants, attention.baseline_variants); none: not built
        rules.table2_attention.output if ATT_ROWS else [],
