# Scenario III-sim (issue 16): the test split performed expressively and recorded in a room (python -m
# pipeline.data.performed): each test piece's score.midi played with a seeded tempo curve, onset deviations,
# dynamics and sustain pedal, rendered by fluidsynth with an unseen soundfont (scenarios.performed.soundfont),
# reverberated (pyroomacoustics room impulse response) and noised (audiomentations) at every
# scenarios.performed.tempo_ratios (null: evaluation.tempo); passages and snippet pairs follow the performed
# timing exactly. Output: a dataset folder holding only the test split (data/scenarios/performed/test/*.csv,
# read by pipeline.models.snippets.load_split as data/dataset is) and an example figure (one passage,
# metronomic against performed, with the tempo curve). Needs the pieces' score.midi and fluidsynth: not a
# rule when the workflow reads a pack.

if not FROM_PACK:

    rule performed:
        input:
            tables=expand("data/dataset/test/{table}.csv", table=["pieces", "performances", "passages", "snippets"]),
            scores=expand(f"{PIECES_ROOT}/{{piece}}/score", piece=sorted(p.name for p in INDEX.pieces if p.split == "test")),
            code=stage_code("data.performed"),
        output:
            scenario=directory("data/scenarios/performed"),
            figure=report("results/figures/scenarios/performed_examples.png", category="Scenarios",
                          subcategory="III-sim (performed)"),
        params:
            cfg=stage_params("seed", "render.soundfonts", "render.train_soundfonts", "render.test_soundfont",
                             "render.gain", "evaluation.tempo", "passages.dedupe_onset_frames", "scenarios.performed"),
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/performed.log",
        benchmark:
            "logs/benchmarks/scenarios/performed.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        shell:
            "python -m pipeline.data.performed --dataset data/dataset --out {output.scenario:q} --figure {output.figure:q}"
            " --params-json {params.cfg:q} > {log} 2>&1"
