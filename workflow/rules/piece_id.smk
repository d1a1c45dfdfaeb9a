# Piece identification (Carvalho & Widmer, EUSIPCO 2021): every piece as a sequence of snippet-model
# window embeddings, then whole test pieces identified among all pieces, both ways, by voting and DTW.

from pipeline.core.variants import piece_id_model_dir

PIECE_ID_MODEL = piece_id_model_dir(config)   # snippet | snippet_cca | snippet_variant_cca/<variant> ("+Att")
ALL_SPLIT_TABLES = expand("data/dataset/{split}/{table}.csv", split=["train", "valid", "test"],
                          table=["pieces", "performances"])


rule piece_windows:
    input:
        model="models/{snippet_model}/model.pt",
        tables=ALL_SPLIT_TABLES,
        code=stage_code("evaluation.piece_windows"),
    output:
        windows="embeddings/{snippet_model}/windows.npz",
        pieces="embeddings/{snippet_model}/pieces.csv",
        performances="embeddings/{snippet_model}/performances.csv",
    wildcard_constraints:
        snippet_model=r"snippet|snippet_cca|snippet_variant(_cca)?/[^/]+",   # not a scenario's folder below it
    params:
        cfg=stage_params("seed", "training", "render", "piece_id"),
    conda:
        "../../environment.yml"
    log:
        "logs/piece_windows/{snippet_model}.log",
    benchmark:
        "logs/benchmarks/piece_windows/{snippet_model}.tsv"
    # one thread: it runs beside the one-thread passage jobs as soon as the snippet model exists, instead
    # of waiting for two free cores at the end of a local run (torch gains little from a second thread)
    threads: 1
    priority: 3
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m pipeline.evaluation.piece_windows --model {input.model} --dataset data/dataset"
        " --out embeddings/{wildcards.snippet_model} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"


rule piece_id:
    input:
        windows=f"embeddings/{PIECE_ID_MODEL}/windows.npz",
        pieces=f"embeddings/{PIECE_ID_MODEL}/pieces.csv",
        performances=f"embeddings/{PIECE_ID_MODEL}/performances.csv",
        code=stage_code("evaluation.piece_id"),
    output:
        metrics="results/piece_id/metrics.json",
        details="results/piece_id/queries.csv",
        table=report("results/tables/piece_id.md", caption="../report/piece_id.rst", category="Results"),
        figure=report("results/piece_id/dtw_paths.png", caption="../report/dtw_paths.rst", category="Results"),
    params:
        cfg=stage_params("seed", "render.test_tempo_ratios", "evaluation.tempo", "evaluation.ties",
                         "evaluation.bl_similarity_tiebreak", "piece_id"),
    conda:
        "../../environment.yml"
    log:
        "logs/piece_id.log",
    benchmark:
        "logs/benchmarks/piece_id.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m pipeline.evaluation.piece_id --windows {input.windows} --out {output.metrics}"
        " --details {output.details} --table {output.table} --figure {output.figure} --params-json {params.cfg:q} > {log} 2>&1"


rule fragments:
    input:
        windows=f"embeddings/{PIECE_ID_MODEL}/windows.npz",
        pieces=f"embeddings/{PIECE_ID_MODEL}/pieces.csv",
        performances=f"embeddings/{PIECE_ID_MODEL}/performances.csv",
        tables=expand("data/dataset/test/{table}.csv", table=["passages", "snippets"]),
        code=stage_code("evaluation.fragments"),
    output:
        metrics="results/piece_id/fragments.json",
        details="results/piece_id/fragments.csv",
        figure=report("results/piece_id/fragments.png", caption="../report/fragments.rst", category="Results"),
    params:
        cfg=stage_params("seed", "evaluation.tempo", "evaluation.ties", "piece_id.fragments", "piece_id.index"),
    conda:
        "../../environment.yml"
    log:
        "logs/fragments.log",
    benchmark:
        "logs/benchmarks/fragments.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m pipeline.evaluation.fragments --windows {input.windows} --dataset data/dataset --out {output.metrics}"
        " --details {output.details} --figure {output.figure} --params-json {params.cfg:q} > {log} 2>&1"


rule scalability:
    input:
        windows=f"embeddings/{PIECE_ID_MODEL}/windows.npz",
        pieces=f"embeddings/{PIECE_ID_MODEL}/pieces.csv",
        performances=f"embeddings/{PIECE_ID_MODEL}/performances.csv",
        code=stage_code("evaluation.scalability"),
    output:
        table="results/piece_id/scalability.csv",
        figure=report("results/piece_id/scalability.png", caption="../report/scalability.rst", category="Results"),
    params:
        cfg=stage_params("seed", "evaluation.tempo", "evaluation.ties", "evaluation.bl_similarity_tiebreak",
                         "piece_id.scalability"),
    conda:
        "../../environment.yml"
    log:
        "logs/scalability.log",
    benchmark:
        "logs/benchmarks/scalability.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m pipeline.evaluation.scalability --windows {input.windows} --out {output.table}"
        " --figure {output.figure} --params-json {params.cfg:q} > {log} 2>&1"


rule repeats:
    input:
        windows=f"embeddings/{PIECE_ID_MODEL}/windows.npz",
        pieces=f"embeddings/{PIECE_ID_MODEL}/pieces.csv",
        performances=f"embeddings/{PIECE_ID_MODEL}/performances.csv",
        model=f"models/{PIECE_ID_MODEL}/model.pt",
        unfolded=rules.unfold.output,
        code=stage_code("evaluation.repeats"),
    output:
        metrics="results/piece_id/repeats.json",
        details="results/piece_id/repeats.csv",
        table=report("results/tables/piece_id_repeats.md", caption="../report/repeats.rst", category="Results"),
    params:
        cfg=stage_params("seed", "training", "evaluation.tempo", "evaluation.ties", "piece_id.audio_hop_frames",
                         "piece_id.repeats"),
    conda:
        "../../environment.yml"
    log:
        "logs/repeats.log",
    benchmark:
        "logs/benchmarks/repeats.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "python -m pipeline.evaluation.repeats --windows {input.windows} --model {input.model} --unfolded {input.unfolded}"
        " --out {output.metrics} --details {output.details} --table {output.table} --params-json {params.cfg:q} > {log} 2>&1"


rule identification:
    # Piece identification and fragment search (the 2021 paper): `snakemake --cores all identification`,
    # after or with the default target (it needs the snippet model). A DVC stage like every other.
    input:
        rules.piece_id.output,
        rules.fragments.output,
        rules.scalability.output,
        rules.repeats.output,
