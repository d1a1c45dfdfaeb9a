# Systems x performances -> passages (strip x-range, audio frame span) and snippet pairs.


rule passages:
    input:
        score=PIECE_DIR + "/score",
        audio=PIECE_DIR + "/audio",
        code=stage_code("passages"),
    output:
        directory(PIECE_DIR + "/passages"),
    params:
        cfg=lambda w: params_json("passages"),
    log:
        "logs/passages/{piece}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.passages --piece {wildcards.piece} --score {input.score:q} --audio {input.audio:q}"
        " --out {output:q} --params-json {params.cfg:q} > {log} 2>&1"
