# All pieces -> per-split tables, quarantine table, counts; alignment figures for a sample.


rule dataset:
    # On a cluster it runs where Snakemake runs: a few seconds of table-writing and hashing, not worth a
    # SLURM job whose submission and status polling take longer than the work
    localrule: True
    input:
        passages=expand(f"{PIECES_ROOT}/{{piece}}/passages", piece=sorted(PIECES)),
        code=stage_code("data.dataset"),
    output:
        summary="data/dataset/summary.json",
        quarantine="data/dataset/quarantine.csv",
        index="data/dataset/index.tsv",
        manifest="data/dataset/manifest.tsv",
        tables=expand("data/dataset/{split}/{table}.csv", split=["train", "valid", "test"],
                      table=["pieces", "performances", "passages", "snippets"]),
    params:
        cfg=stage_params("seed", "corpus"),
    conda:
        "../../environment.yml"
    log:
        "logs/dataset.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "python -m pipeline.data.dataset --out data/dataset --params-json {params.cfg:q} > {log} 2>&1"


rule alignment_figure:
    input:
        passages="data/pieces/{piece}/passages",
        code=stage_code("data.figures"),
    output:
        report("results/figures/alignment/{piece}.png", caption="../report/alignment.rst",
               category="Data", subcategory="Alignment"),
    conda:
        "../../environment.yml"
    log:
        "logs/figures/alignment/{piece}.log",
    priority: FIGURE_PRIORITY  # as soon as its piece is built: none is left running when the training needs every core
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipeline.data.figures --piece-root data/pieces/{wildcards.piece} --out {output:q} > {log} 2>&1"


rule data:
    input:
        "data/dataset/summary.json",
        expand("results/figures/alignment/{piece}.png", piece=figure_pieces()),


rule unfold:
    # The evaluation pieces performed with their repeats (structure mismatch, piece identification)
    input:
        tables=expand("data/dataset/{split}/{table}.csv", split=[config["evaluation"]["split"]],
                      table=["pieces", "performances"]),
        index="data/dataset/index.tsv",
        code=stage_code("data.unfold"),
    output:
        directory("data/unfolded"),   # performances.csv, pieces.csv, spec/<piece>.npy
    params:
        cfg=stage_params("seed", "render", "engrave.lilypond_timeout_s", "evaluation.split", "evaluation.tempo",
                         "piece_id.repeats.min_extra_duration"),
    conda:
        "../../environment.yml"
    log:
        "logs/unfold.log",
    benchmark:
        "logs/benchmarks/unfold.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "python -m pipeline.data.unfold --dataset data/dataset --out {output:q} --params-json {params.cfg:q} > {log} 2>&1"
