# Scenario II-sim (issue 16): the test split's sheet music degraded to look scanned (python -m
# pipeline.data.scan): each test page through a seeded known geometric transform (rotation, scale, smooth
# warp; system boxes and noteheads mapped through it) and augraphy's photometric degradations, the strips
# cut again, passages and snippets recomputed. Output: a dataset folder holding only the test split
# (data/scenarios/scan/test/*.csv, read by pipeline.models.snippets.load_split as data/dataset is) and
# an example figure. Needs the pieces' page images: not a rule when the workflow reads a pack.

if not FROM_PACK:

    rule scan:
        input:
            tables=expand("data/dataset/test/{table}.csv", table=["pieces", "performances", "passages", "snippets"]),
            scores=expand(f"{PIECES_ROOT}/{{piece}}/score", piece=sorted(p.name for p in INDEX.pieces if p.split == "test")),
            code=stage_code("data.scan"),
        output:
            scenario=directory("data/scenarios/scan"),
            figure=report("results/figures/scenarios/scan_examples.png", category="Scenarios", subcategory="II-sim (scan)"),
        params:
            cfg=stage_params("seed", "scenarios.scan"),
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/scan.log",
        benchmark:
            "logs/benchmarks/scenarios/scan.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        shell:
            "python -m pipeline.data.scan --dataset data/dataset --out {output.scenario:q} --figure {output.figure:q}"
            " --params-json {params.cfg:q} > {log} 2>&1"
