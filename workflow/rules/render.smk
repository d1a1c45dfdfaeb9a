# LilyPond's MIDI -> fluidsynth renderings (tempo x soundfont) -> 92-bin log spectrograms.


rule render:
    input:
        score=PIECE_DIR + "/score",
        code=stage_code("render"),
    output:
        directory(PIECE_DIR + "/audio"),
    params:
        split=lambda w: PIECES[w.piece].split,
        cfg=lambda w: params_json("seed", "render"),
    log:
        "logs/render/{piece}.log",
    benchmark:
        "benchmarks/runs/render/{piece}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m pipeline.render --piece {wildcards.piece} --split {params.split} --score {input.score:q}"
        " --out {output:q} --params-json {params.cfg:q} --timings logs/timings/render/{wildcards.piece}.json"
        " > {log} 2>&1"
