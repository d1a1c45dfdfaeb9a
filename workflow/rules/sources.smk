# Embedded default corpus: music21 works -> LilyPond sources (musicxml2ly).


rule music21_source:
    input:
        code=stage_code("corpus_music21"),
    output:
        directory("data/sources/{piece}"),
    params:
        work=lambda w: PIECES[w.piece].work,
    log:
        "logs/music21_source/{piece}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline.corpus_music21 --work {params.work:q} --out {output:q} > {log} 2>&1"
