"""Load and validate ``params.yaml`` (JSON schema + checks a schema cannot express)."""
from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import yaml

from pipeline.core.errors import ConfigError

SCHEMA_FILE = Path(__file__).with_name("params.schema.yaml")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml's parser: 15x faster, same results


@functools.cache
def _schema() -> dict:
    """The parameter schema, parsed once per process (validate and every --set / sweep value read it)."""
    return yaml.load(SCHEMA_FILE.read_text(), Loader=_YAML_LOADER)


def validate(params: dict, where: str = "params.yaml") -> dict:
    """Raise :class:`ConfigError` naming the offending key if ``params`` is invalid; return it."""
    import jsonschema  # here, not at the top: a piece job (Snakemake validated its config) skips its 0.13 s import

    schema = _schema()
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
    ev = params["evaluation"]
    if ev["split"] == "test" and ev["tempo"] not in render["test_tempo_ratios"]:
        raise ConfigError(f"{where}: evaluation.tempo {ev['tempo']} is not one of render.test_tempo_ratios "
                          f"{render['test_tempo_ratios']}: the test split has no such rendering")
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
    sweep = params["scenarios"]["sweep"]
    for model in sweep["models"]:
        if model != "bl" and model not in variants:
            raise ConfigError(f"{where}: scenarios.sweep.models: '{model}' is not bl or one of {sorted(variants)}")
    for value in sweep["values"]:        # each value must be one the swept key accepts
        try:
            override(params, f"scenarios.{sweep['scenario']}.{sweep['key']}={value}")
        except ConfigError as e:
            raise ConfigError(f"{where}: scenarios.sweep: {e}") from None
    pid_models = ["snippet", "snippet_cca", *sorted(params["snippet_variants"])]
    if params["piece_id"]["model"] not in pid_models:
        raise ConfigError(f"{where}: piece_id.model: '{params['piece_id']['model']}' is not one of {pid_models}")
    attending = sorted(k for k, v in params["snippet_variants"].items() if v["attention"])
    if params["attention"]["analysis"]["variant"] not in attending:
        raise ConfigError(f"{where}: attention.analysis.variant: '{params['attention']['analysis']['variant']}' "
                          f"is not a snippet_variants key with attention: {attending}")
    used = set(render["train_soundfonts"] + [render["valid_soundfont"], render["test_soundfont"]])
    for name in [] if params["pack"]["read_from"] == "pack" else sorted(used):    # a node training from a pack renders nothing
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
        params = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must be a mapping")
    return validate(params, str(path))


def subset(params: dict, keys: list[str]) -> dict:
    """The part of ``params`` under ``keys`` (dotted paths, e.g. ``passage_variants.rnn``), nested as in
    ``params``: what a stage reads, and all that it may read."""
    out: dict = {}
    for key in keys:
        *parents, leaf = key.split(".")
        src, dst = params, out
        for part in parents:
            src, dst = src[part], dst.setdefault(part, {})
        dst[leaf] = src[leaf]
    return out


def add_params_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--params-keys", nargs="+", default=None,
                        help="the keys of --params this stage reads (dotted paths); the rest is dropped")
    parser.add_argument("--params-json", default=None,
                        help="the keys a stage reads, as JSON (the Snakemake rules: the workflow validated the whole config)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads: overrides training.threads (a resource of the job, not a parameter)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="give one dotted key (among those read) a YAML value, checked against its schema: a sweep "
                             "point, passed alike by both executors (repeatable)")


def override(params: dict, assignment: str) -> dict:
    """``params`` with ``KEY=VALUE`` applied (VALUE parsed as YAML); KEY must exist in ``params`` and VALUE
    must satisfy KEY's schema, else :class:`ConfigError`."""
    import jsonschema

    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE")
    value = yaml.load(text, Loader=_YAML_LOADER)
    *parents, leaf = key.split(".")
    node, schema = params, _schema()
    for part in key.split("."):
        schema = schema.get("properties", {}).get(part)
        if schema is None:
            raise ConfigError(f"--set {key}: no such key in the parameter schema")
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"--set {key}: '{part}' is not among the parameters this stage reads")
        node = node[part]
    if leaf not in node:
        raise ConfigError(f"--set {key}: not among the parameters this stage reads")
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if errors:
        raise ConfigError(f"--set {key}={text}: {errors[0].message}")
    out = json.loads(json.dumps(params))         # a deep copy: the caller's mapping is not changed
    target = out
    for part in parents:
        target = target[part]
    target[leaf] = value
    return out


def from_args(args: argparse.Namespace) -> dict:
    """The parameters a stage CLI runs with: the same mapping from either executor. Snakemake passes the
    keys a rule reads as ``--params-json`` (only they trigger a rerun); DVC passes the validated file and
    the same keys (``--params params.yaml --params-keys ...``, the stage's ``params:``)."""
    if args.params_json:
        params = json.loads(args.params_json)
    else:
        params = load(args.params)
        if args.params_keys:
            params = subset(params, args.params_keys)
    for assignment in getattr(args, "overrides", []):
        params = override(params, assignment)
    if args.threads is not None and "training" in params:
        params = {**params, "training": {**params["training"], "threads": args.threads}}
    return params
