# One piece's data chain in one job (python -m pipeline.piece): LilyPond source (a Mutopia folder, or
# a music21 work converted in the job) -> normalised source,
# page images, system boxes/time spans, aligned noteheads (score/) -> fluidsynth renderings
# (ρ x soundfont) and 92-bin log spectrograms (audio/) -> passages and snippet pairs (passages/).


rule piece:
    input:
        unpack(piece_source),
        code=stage_code("piece"),
    output:
        score=directory(PIECE_DIR + "/score"),
        audio=directory(PIECE_DIR + "/audio"),
        passages=directory(PIECE_DIR + "/passages"),
    params:
        split=lambda w: PIECES[w.piece].split,
        source=source_args,
        cfg=lambda w: params_json("seed", "engrave", "render", "passages"),
    log:
        "logs/piece/{piece}.log",
    benchmark:
        "benchmarks/runs/piece/{piece}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=40,
    shell:
        "python -m pipeline.piece --piece {wildcards.piece} --split {params.split} {params.source}"
        " --out data/pieces/{wildcards.piece} --timings-dir logs/timings"
        " --params-json {params.cfg:q} > {log} 2>&1"
