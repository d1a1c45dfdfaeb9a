# LilyPond source -> normalised source, page images, system boxes/time spans, aligned noteheads.


rule engrave:
    input:
        unpack(piece_source),
        code=stage_code("engrave"),
    output:
        directory(PIECE_DIR + "/score"),
    params:
        source=source_folder,
        main=lambda w: PIECES[w.piece].main,
        cfg=lambda w: params_json("engrave"),
    log:
        "logs/engrave/{piece}.log",
    benchmark:
        "benchmarks/runs/engrave/{piece}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "python -m pipeline.engrave --piece {wildcards.piece} --source {params.source:q} --main {params.main:q}"
        " --out {output:q} --params-json {params.cfg:q} --timings logs/timings/engrave/{wildcards.piece}.json"
        " > {log} 2>&1"
