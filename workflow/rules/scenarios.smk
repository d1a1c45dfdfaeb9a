# Scenarios II-sim and III-sim (issue 16): every Table 2 model evaluated, with the protocol of evaluate.smk,
# on the test split with scanned-looking scores (scan.smk) and with performed, recorded-sounding audio
# (performed.smk); Table 2 for I / II-sim / III-sim with the paired drop from I; the tempo table of III-sim;
# the sweep of one degradation strength against MRR. Target `scenarios` (outside the quick default).
# Not in pack mode: the scenarios are built from the pieces' pages and MIDI.

SCENARIOS = {"scan": "II-sim", "performed": "III-sim"}


wildcard_constraints:
    value=r"[0-9][0-9.e+-]*",

if not FROM_PACK:

    rule evaluate_scenario:
        input:
            model=lambda w: EVAL_MODELS[w.model],
            scenario="data/scenarios/{scenario}",
            code=stage_code("evaluation.evaluate"),
        output:
            metrics="results/scenarios/{scenario}/metrics/{model}.json",
            details="results/scenarios/{scenario}/retrieval/{model}.csv",
        params:
            cfg=stage_params(*EVALUATION_KEYS),
        wildcard_constraints:
            scenario="|".join([*SCENARIOS, r"sweep/[0-9][0-9.e+-]*"]),   # a scenario, or a sweep point's build of one
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/evaluate/{scenario}/{model}.log",
        benchmark:
            "logs/benchmarks/scenarios/evaluate/{scenario}/{model}.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=60,
        shell:
            "python -m pipeline.evaluation.evaluate --model {input.model} --dataset {input.scenario}"
            " --out {output.metrics} --details {output.details} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"

    rule table2_scenarios:
        input:
            reference=expand("results/retrieval/{model}.csv", model=list(EVAL_MODELS)),
            scenarios=expand("results/scenarios/{scenario}/retrieval/{model}.csv", scenario=list(SCENARIOS),
                             model=list(EVAL_MODELS)),
            code=stage_code("evaluation.scenarios"),
        output:
            csv=report("results/tables/table2_scenarios.csv", caption="../report/table2_scenarios.rst", category="Results"),
            md="results/tables/table2_scenarios.md",
        params:
            scenarios=" ".join(f"--scenario {label}=results/scenarios/{name}/retrieval" for name, label in SCENARIOS.items()),
            models=list(EVAL_MODELS),
            out=lambda w, output: output.csv[: -len(".csv")],
        conda:
            "../../environment.yml"
        log:
            "logs/tables/table2_scenarios.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "python -m pipeline.evaluation.scenarios --reference results/retrieval {params.scenarios}"
            " --models {params.models} --out {params.out} > {log} 2>&1"

    rule evaluate_scenario_tempo:
        input:
            model=lambda w: EVAL_MODELS[w.model],
            scenario="data/scenarios/performed",
            code=stage_code("evaluation.evaluate"),
        output:
            directory("results/scenarios/performed/tempo/{model}"),
        params:
            cfg=stage_params(*EVALUATION_KEYS, "render.test_tempo_ratios"),
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/evaluate/tempo_{model}.log",
        benchmark:
            "logs/benchmarks/scenarios/evaluate/tempo_{model}.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=60,
        shell:
            "python -m pipeline.evaluation.evaluate --model {input.model} --dataset {input.scenario} --tempo test-ratios"
            " --out-dir {output} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"

    rule tempo_table_performed:
        input:
            metrics=expand("results/scenarios/performed/tempo/{model}", model=TEMPO_MODELS),
            code=stage_code("evaluation.experiments"),
        output:
            csv=report("results/scenarios/performed/tempo.csv", category="Scenarios", subcategory="III-sim (performed)"),
            md="results/scenarios/performed/tempo.md",
        params:
            cfg=stage_params("experiments.tempo", "render.test_tempo_ratios"),
            out=lambda w, output: output.csv[: -len(".csv")],
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/tempo_table.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "python -m pipeline.evaluation.experiments tempo {input.metrics} --out {params.out}"
            " --params-json {params.cfg:q} > {log} 2>&1"

    # Piece identification on III-sim (the 2021 paper's protocol): the test pieces' performed renderings are
    # the queries (every tempo) and the test pieces' audio in the database; sheets and the other splits as built.
    rule piece_windows_performed:
        input:
            model=f"models/{PIECE_ID_MODEL}/model.pt",
            tables=ALL_SPLIT_TABLES,
            scenario="data/scenarios/performed",
            code=stage_code("evaluation.piece_windows"),
        output:
            windows=f"embeddings/{PIECE_ID_MODEL}/performed/windows.npz",
            pieces=f"embeddings/{PIECE_ID_MODEL}/performed/pieces.csv",
            performances=f"embeddings/{PIECE_ID_MODEL}/performed/performances.csv",
        params:
            cfg=stage_params("seed", "training", "render", "piece_id"),
            out=lambda w, output: str(Path(output.windows).parent),
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/piece_windows_performed.log",
        benchmark:
            "logs/benchmarks/scenarios/piece_windows_performed.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=120,
        shell:
            "python -m pipeline.evaluation.piece_windows --model {input.model} --dataset data/dataset --scenario {input.scenario}"
            " --out {params.out} --threads {threads} --params-json {params.cfg:q} > {log} 2>&1"

    rule piece_id_performed:
        input:
            windows=rules.piece_windows_performed.output.windows,
            pieces=rules.piece_windows_performed.output.pieces,
            performances=rules.piece_windows_performed.output.performances,
            code=stage_code("evaluation.piece_id"),
        output:
            metrics="results/scenarios/performed/piece_id/metrics.json",
            details="results/scenarios/performed/piece_id/queries.csv",
            table=report("results/scenarios/performed/piece_id/piece_id.md", category="Scenarios", subcategory="III-sim (performed)"),
            figure="results/scenarios/performed/piece_id/dtw_paths.png",
        params:
            cfg=rules.piece_id.params.cfg,
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/piece_id_performed.log",
        benchmark:
            "logs/benchmarks/scenarios/piece_id_performed.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=120,
        shell:
            "python -m pipeline.evaluation.piece_id --windows {input.windows} --out {output.metrics}"
            " --details {output.details} --table {output.table} --figure {output.figure} --params-json {params.cfg:q} > {log} 2>&1"

    # One degradation strength against MRR (scenarios.sweep): the scenario built once per value, the same
    # protocol; `--set` gives the stage the value under both executors.
    SWEEP = config["scenarios"]["sweep"]
    SWEEP_RULE = {"scan": rules.scan, "performed": rules.performed}[SWEEP["scenario"]]
    SWEEP_KEY = f"scenarios.{SWEEP['scenario']}.{SWEEP['key']}"
    SWEEP_VALUES = [f"{float(v):g}" for v in SWEEP["values"]]
    # a sweep point needs the evaluation tempo only (the tempo table is the scenario's own)
    SWEEP_EXTRA = "--set scenarios.performed.tempo_ratios=null" if SWEEP["scenario"] == "performed" else ""

    rule sweep_scenario:
        input:
            tables=SWEEP_RULE.input.tables,
            scores=SWEEP_RULE.input.scores,
            code=SWEEP_RULE.input.code,
        output:
            scenario=directory("data/scenarios/sweep/{value}"),
            figure="results/scenarios/sweep/{value}/examples.png",
        params:
            cfg=SWEEP_RULE.params.cfg,
            module=f"pipeline.data.{SWEEP['scenario']}",
            key=SWEEP_KEY,
            extra=SWEEP_EXTRA,
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/sweep/{value}.log",
        benchmark:
            "logs/benchmarks/scenarios/sweep/{value}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        shell:
            "python -m {params.module} --dataset data/dataset --out {output.scenario:q} --figure {output.figure:q}"
            " --set {params.key}={wildcards.value} {params.extra} --params-json {params.cfg:q} > {log} 2>&1"

    rule scenario_sweep:
        input:
            details=expand("results/scenarios/sweep/{value}/retrieval/{model}.csv", value=SWEEP_VALUES, model=SWEEP["models"]),
            metrics=expand("results/scenarios/sweep/{value}/metrics/{model}.json", value=SWEEP_VALUES, model=SWEEP["models"]),
            code=stage_code("evaluation.sweep"),
        output:
            csv="results/scenarios/sweep.csv",
            md="results/scenarios/sweep.md",
            figure=report("results/figures/scenarios/sweep.png", caption="../report/sweep.rst", category="Scenarios"),
        params:
            points=" ".join(f"--point {v}=results/scenarios/sweep/{v}" for v in SWEEP_VALUES),
            key=SWEEP_KEY,
            models=SWEEP["models"],
            out=lambda w, output: output.csv[: -len(".csv")],
        conda:
            "../../environment.yml"
        log:
            "logs/scenarios/sweep.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "python -m pipeline.evaluation.sweep --key {params.key} {params.points} --models {params.models}"
            " --out {params.out} --figure {output.figure} > {log} 2>&1"

    rule scenarios:
        input:
            rules.table2_scenarios.output,
            rules.tempo_table_performed.output,
            rules.piece_id_performed.output,
            rules.scan.output.figure,
            rules.performed.output.figure,
            rules.scenario_sweep.output,
