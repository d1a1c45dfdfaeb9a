# Config validation, the piece index and small helpers shared by the rules.
import ast
import itertools
import json
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from pipeline.data.corpus import Index, batch_priorities, batch_spec, piece_batches, piece_index
from pipeline.data.render import plan_performances
from pipeline.data.packfile import PackError, check_params as check_pack
from pipeline.core.errors import ConfigError
from pipeline.core.params import subset, validate as validate_params

# Jobs call `python -m pipeline.<stage>`: make that the interpreter running Snakemake (e.g. .venv).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

try:
    validate_params(config, "params.yaml (or --configfile)")
    # pack.read_from: pack = train and evaluate from the pack in pack.dir (a GPU node): no piece index, no
    # data rules, no corpus or soundfonts; the pack's parts and data parameters are checked here, before any job
    FROM_PACK = config["pack"]["read_from"] == "pack"
    INDEX = Index([], []) if FROM_PACK else piece_index(config)
    if FROM_PACK:
        check_pack(config["pack"]["dir"], config)
except (ConfigError, PackError) as err:
    sys.exit(f"scorelink: {err}")
PACK_DIR = config["pack"]["dir"]
DATA_DIR = PACK_DIR if FROM_PACK else "data/dataset"    # what training and evaluation read (their --dataset)

PIECES = {p.name: p for p in INDEX.pieces}
PIECE_BATCHES = piece_batches(INDEX.pieces, config["corpus"]["batch_pieces"])   # {batch id: [Piece]}
# Longest batches first (pipeline.data.corpus.batch_priorities); an alignment figure outranks every batch
BATCH_PRIORITY = batch_priorities(PIECE_BATCHES, lambda p: [
    config["render"]["soundfonts"][sf]["file"] for _, sf in plan_performances(p.name, p.split, config["render"], config["seed"])])
FIGURE_PRIORITY = len(PIECE_BATCHES)
PIECES_ROOT = "data/pieces"
PIECE_STEPS = ("score", "audio", "passages")    # a piece's output folders (pipeline.data.piece.STEPS)
# the pipeline package next to the Snakefile (relative when run from the project root)
CODE_DIR = Path(os.path.relpath(Path(workflow.basedir) / "pipeline"))
# Threads of a training job (torch CPU math, data loading next to a GPU). Snakemake lowers it to
# --cores on a local run; on a cluster it is the job's --cpus-per-task (profiles/slurm can override).
TRAINING_THREADS = 8
# Pretrained passage variants (but the one computing the frozen features) are independent jobs of similar
# size: on a local machine they run two at a time with half the cores each, because torch on the CPU
# gains less than 2x from doubling its threads (1.46x from 1 to 2 threads, README "The quick default").
try:
    LOCAL_CORES = workflow.cores if workflow.local_exec else None
except WorkflowError:  # no --cores (e.g. a cluster profile without it)
    LOCAL_CORES = None
PASSAGE_THREADS = max(1, min(TRAINING_THREADS, LOCAL_CORES // 2)) if LOCAL_CORES else TRAINING_THREADS


wildcard_constraints:
    piece="|".join(sorted(map(re.escape, PIECES))) or "NO_PIECES",
    variant="|".join(sorted(map(re.escape, config["passage_variants"]))),
    model="bl|" + "|".join(sorted(map(re.escape, config["passage_variants"]))),
    dim=r"\d+",
    snippet_model="snippet|snippet_cca",


_MODULE_IMPORTS = {}   # path -> pipeline modules it imports: each file is parsed once per Snakemake process


def _module_imports(path):
    """The ``pipeline.`` modules (and candidate modules: ``from pipeline.core import constants``) that the
    file ``path`` imports anywhere, also inside functions; parsed once (55 rules ask: 7 s per parse otherwise)."""
    if path not in _MODULE_IMPORTS:
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("pipeline."):
                package = node.module[len("pipeline."):]
                names.append(package)                               # from pipeline.core.params import load
                names += [f"{package}.{a.name}" for a in node.names]     # from pipeline.core import constants
            elif isinstance(node, ast.Import):
                names += [a.name[len("pipeline."):] for a in node.names if a.name.startswith("pipeline.")]
        # files the module reads beside itself (the LilyPond includes: Path(__file__).with_name("....ily"))
        beside = [path.with_name(n) for n in re.findall(r'with_name\("([\w.]+\.ily)"\)', path.read_text())]
        _MODULE_IMPORTS[path] = (names, beside)
    return _MODULE_IMPORTS[path]


def stage_code(module):
    """Source files of ``pipeline.<module>`` (e.g. ``data.piece``) and every pipeline module it imports
    (transitively), with their packages' ``__init__.py``: listed as rule inputs, so that editing the code of
    a stage reruns exactly that stage."""
    todo, files, extra = [module], set(), set()
    while todo:
        name = todo.pop()
        path = CODE_DIR.joinpath(*name.split(".")).with_suffix(".py")
        if path in files or not path.is_file():
            continue
        files |= {path, path.parent / "__init__.py", CODE_DIR / "__init__.py"}
        names, beside = _module_imports(path)
        todo += names
        extra.update(beside)
    return sorted(str(f) for f in files | extra if f.is_file())


def data_dir(wildcards):
    """What training and evaluation read (a rule's ``params.dataset``, their ``--dataset``): DATA_DIR."""
    return DATA_DIR


def split_tables(splits, tables):
    """The input files of a stage reading ``splits`` from DATA_DIR: their tables in the built dataset, or
    the pack's manifest (it holds the SHA-256 of every part)."""
    if FROM_PACK:
        return [f"{PACK_DIR}/pack.json"]
    return expand("data/dataset/{split}/{table}.csv", split=splits, table=tables)


# Paths and names shared by several rule files (defined here, so that include order does not matter).
DATASET_TABLES = split_tables(["train", "valid"], ["pieces", "performances", "passages", "snippets"])  # what training reads
EVAL_TABLES = split_tables([config["evaluation"]["split"]], ["pieces", "performances", "passages"])  # what evaluation reads
INIT_MODEL = {None: [], "snippet": "models/snippet/model.pt", "snippet_cca": "models/snippet_cca/model.pt"}
EVAL_MODELS = {"bl": f"models/{config['evaluation']['baseline_model']}/model.pt",
               **{v: f"models/passage/{v}/model.pt" for v in config["passage_variants"]}}
# what `python -m pipeline.evaluation.evaluate` reads (BL's passage hops: those the passage models train with)
EVALUATION_KEYS = ("seed", "training", "evaluation", "train_passage.sheet_hop_half_px", "train_passage.audio_hop_frames")


def stage_params(*keys):
    """The params keys (dotted paths) a rule's stage reads, as JSON: passed to the CLI and tracked by
    Snakemake, so that only they rerun the rule. The DVC stage compiled from the rule passes the same
    keys of params.yaml (``--params-keys``, its ``params:``), so both executors run a stage with the same mapping."""
    return json.dumps(subset(config, list(keys)), sort_keys=True)


def variant_init(wildcards):
    return INIT_MODEL[config["passage_variants"][wildcards.variant]["init"]]


def variant_from_scratch(wildcards):
    return config["passage_variants"][wildcards.variant]["init"] is None


def variant_computes_features(wildcards):
    """The dimension sweep's variant: the first FZ job, which computes the frozen features the others reuse."""
    return wildcards.variant == config["experiments"]["dim_sweep"]["variant"]


def init_arg(wildcards, input):
    return f"--init {input.init}" if input.init else ""


def batch_sources(pieces):
    """Source files of a batch's pieces (so an edit reruns the batch): their corpus folders; none for
    music21 works, which the job converts from the installed music21 corpus."""
    return sorted(str(f) for p in pieces if not p.work for f in Path(p.source).rglob("*") if f.is_file())


def batch_json(pieces):
    """The batch argument of ``python -m pipeline.data.piece``."""
    return json.dumps([batch_spec(p) for p in pieces])


def figure_pieces():
    """Pieces drawn as alignment figures: round-robin over test, valid, train, in index order."""
    by_split = [[p.name for p in INDEX.pieces if p.split == s] for s in ("test", "valid", "train")]
    order = [n for column in itertools.zip_longest(*by_split) for n in column if n]
    return order[: config["figures"]["n_pieces"]]


def all_targets():
    """The default target: the data, the 2023 paper's models, Table 2 and experiments (the quick default
    stays within 15 min on 2 cores). Piece identification is the target ``identification``."""
    if FROM_PACK:    # from a pack: the models, Table 2 and the experiments (piece identification reads the dataset)
        return [*rules.models.input, *rules.evaluation.input, *rules.experiments.input]
    return [*rules.data.input, *rules.pack.output, *rules.models.input, *rules.evaluation.input, *rules.experiments.input]
