# The portable training pack: the built dataset's tables, sheets and quantised spectrograms in checksummed
# parts (python -m pipeline.data.pack; README "Paper scale on a GPU node"). Not a rule when the workflow
# reads a pack (pack.read_from: pack): there the pack is an input, brought to the node, never rebuilt.

if not FROM_PACK:

    rule pack:
        input:
            tables=expand("data/dataset/{split}/{table}.csv", split=["train", "valid", "test"],
                          table=["pieces", "performances", "passages", "snippets"]),
            summary="data/dataset/summary.json",
            code=stage_code("data.pack"),
        output:
            directory(PACK_DIR),
        params:
            cfg=stage_params("seed", "corpus", "engrave", "render", "passages", "pack.part_mib", "pack.spec_dtype"),
        conda:
            "../../environment.yml"
        log:
            "logs/pack.log",
        benchmark:
            "logs/benchmarks/pack.tsv"
        priority: 1  # beside the training, which does not wait for it
        threads: 1
        resources:
            mem_mb=4000,
            runtime=60,
        shell:
            "python -m pipeline.data.pack --dataset data/dataset --out {output:q} --params-json {params.cfg:q} > {log} 2>&1"
