# The data chain of a batch of pieces in one job (python -m pipeline.data.piece --batch): LilyPond sources
# (a Mutopia folder, or a music21 work converted in the job) -> normalised source, page images, system
# boxes/time spans, aligned noteheads (score/) -> fluidsynth renderings (ρ x soundfont) and 92-bin log
# spectrograms (audio/) -> passages and snippet pairs (passages/), per piece in data/pieces/<piece>/.
# One rule per batch (corpus.batch_pieces pieces of one split, pipeline.data.corpus.piece_batches): the
# batch shares one Python and one LilyPond start-up. Each is named piece_<batch>, e.g. piece_train_000.

for _batch, _members in PIECE_BATCHES.items():

    rule:
        name:
            f"piece_{_batch}"
        input:
            src=batch_sources(_members),
            code=stage_code("data.piece"),
        output:
            [directory(f"{PIECES_ROOT}/{p.name}/{step}") for p in _members for step in PIECE_STEPS],
        params:
            batch=batch_json(_members),
            root=lambda w, output: Path(output[0]).parent.parent,  # data/pieces
            cfg=stage_params("seed", "engrave", "render", "passages"),
        conda:
            "../../environment.yml"
        log:
            f"logs/piece/{_batch}.log",
        benchmark:
            f"logs/benchmarks/piece/{_batch}.tsv"
        group:
            "piece"  # bundled into fewer cluster jobs by the cluster profile (group-components); no effect locally
        priority: BATCH_PRIORITY[_batch]  # longest first: the short batches fill the cores at the end
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10 + 5 * len(_members),
        shell:
            "python -m pipeline.data.piece --batch {params.batch:q} --out-root {params.root}"
            " --timings-dir logs/timings --params-json {params.cfg:q} > {log} 2>&1"
