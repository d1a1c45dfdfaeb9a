# One piece's data chain in one job (python -m pipeline.piece): LilyPond source (a Mutopia folder, or
# a music21 work converted in the job) -> normalised source,
# page images, system boxes/time spans, aligned noteheads (score/) -> fluidsynth renderings
# (ρ x soundfont) and 92-bin log spectrograms (audio/) -> passages and snippet pairs (passages/).


rule piece:
    input:
        unpack(piece_source),
        code=stage_code("piece"),
    output:
        score=directory("data/pieces/{piece}/score"),
        audio=directory("data/pieces/{piece}/audio"),
        passages=directory("data/pieces/{piece}/passages"),
    params:
        split=lambda w: PIECES[w.piece].split,
        source=source_args,
        cfg=stage_params("seed", "engrave", "render", "passages"),
    conda:
        "../../environment.yml"
    log:
        "logs/piece/{piece}.log",
    benchmark:
        "logs/benchmarks/piece/{piece}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=40,
    shell:
        "python -m pipeline.piece --piece {wildcards.piece} --split {params.split} {params.source}"
        " --out data/pieces/{wildcards.piece} --timings-dir logs/timings"
        " --params-json {params.cfg:q} > {log} 2>&1"
