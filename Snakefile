# scorelink: audio–sheet-music passage retrieval, from LilyPond sources to results.
# Thin entry point: every stage lives in workflow/rules/<stage>.smk and calls `python -m pipeline.<stage>`.
from snakemake.utils import min_version

min_version("9.20")


configfile: "params.yaml"


envvars:
    "PATH",  # jobs run `python` of the interpreter running Snakemake (workflow/rules/common.smk)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/piece.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/pack.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/piece_id.smk"
include: "workflow/rules/attention.smk"
include: "workflow/rules/scan.smk"
include: "workflow/rules/performed.smk"
include: "workflow/rules/scenarios.smk"


rule all:
    default_target: True
    input:
        all_targets(),
