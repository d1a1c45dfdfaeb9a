"""Load and validate ``params.yaml`` (JSON schema + checks a schema cannot express)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jsonschema
import yaml

from pipeline.errors import ConfigError

SCHEMA_FILE = Path(__file__).with_name("params.schema.yaml")


def validate(params: dict, where: str = "params.yaml") -> dict:
    """Raise :class:`ConfigError` naming the offending key if ``params`` is invalid; return it."""
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(params), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.path)) or '<top>'}: {e.message}" for e in errors[:10]]
        raise ConfigError(f"{where} is invalid:\n" + "\n".join(lines))
    render = params["render"]
    names = set(render["soundfonts"])
    for key in render["train_soundfonts"] + [render["valid_soundfont"], render["test_soundfont"]]:
        if key not in names:
            raise ConfigError(f"{where}: render soundfont '{key}' is not defined under render.soundfonts")
    if render["test_soundfont"] in render["train_soundfonts"]:
        raise ConfigError(f"{where}: render.test_soundfont '{render['test_soundfont']}' is also a training soundfont")
    if render["valid_soundfont"] == render["test_soundfont"]:
        raise ConfigError(f"{where}: render.valid_soundfont must differ from render.test_soundfont "
                          f"('{render['test_soundfont']}'): validation would tune on the test condition")
    if 1.0 not in render["test_tempo_ratios"]:
        raise ConfigError(f"{where}: render.test_tempo_ratios must include 1.0")
    for name, v in params["passage_variants"].items():
        if v["freeze_cnn"] and v["init"] is None:
            raise ConfigError(f"{where}: passage_variants.{name}: freeze_cnn needs an init model (it would freeze random CNNs)")
    variants, ex = set(params["passage_variants"]), params["experiments"]
    checks = [("experiments.dim_sweep.variant", ex["dim_sweep"]["variant"], variants),
              ("experiments.embedding_model", ex["embedding_model"], variants),
              *(("experiments.tempo.variants", m, variants) for m in ex["tempo"]["variants"])]
    for key, value, allowed in checks:
        if value not in allowed:
            raise ConfigError(f"{where}: {key}: '{value}' is not one of {sorted(allowed)}")
    for name in sorted(set(render["train_soundfonts"] + [render["valid_soundfont"], render["test_soundfont"]])):
        f = Path(render["soundfonts"][name]["file"])
        if not f.is_file():
            raise ConfigError(f"{where}: render.soundfonts.{name}.file: soundfont not found: {f} "
                              "(install the Debian package or fix the path)")
    return params


def load(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file not found: {path}")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must be a mapping")
    return validate(params, str(path))


def add_params_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--params-json", default=None,
                        help="the whole parameter mapping as JSON (used by the Snakemake rules)")


def from_args(args: argparse.Namespace) -> dict:
    """The parameters a stage CLI runs with. ``--params-json`` carries only the sections a Snakemake
    rule passes (so that only those trigger a rerun); the workflow validated the whole file already."""
    if args.params_json:
        return json.loads(args.params_json)
    return load(args.params)
