"""Snippet-model variants (``snippet_variants`` of params.yaml, issue 14): which one is the default snippet
model, where each variant's artifacts live and which params keys its training reads. Used by the workflow
rules (``workflow/rules/attention.smk``); no torch."""
from __future__ import annotations

from pipeline.core.constants import SHEET_CONTEXT_PX, SPEC_CONTEXT_FRAMES

DEFAULT_GEOMETRY = {"audio_context_frames": SPEC_CONTEXT_FRAMES, "attention": False, "sheet_context_px": SHEET_CONTEXT_PX}


def is_default_snippet_model(variant: dict) -> bool:
    """True for a variant equal to the default snippet model (1 s, no attention, 180 px, no schedule
    overrides): it is ``models/snippet`` (+ ``models/snippet_cca``), not trained again."""
    return all(variant[k] == v for k, v in DEFAULT_GEOMETRY.items()) and not variant.get("train_snippet")


def trained_snippet_variants(variants: dict) -> list[str]:
    """The variants that get their own training job (all but one equal to the default model), sorted."""
    return sorted(name for name, v in variants.items() if not is_default_snippet_model(v))


def snippet_variant_model(variants: dict, name: str, refined: bool = True) -> str:
    """The model artifact of variant ``name``: CCA-refined (what is evaluated) or as trained."""
    if is_default_snippet_model(variants[name]):
        return "models/snippet_cca/model.pt" if refined else "models/snippet/model.pt"
    return f"models/snippet_variant{'_cca' if refined else ''}/{name}/model.pt"


def piece_id_model_dir(params: dict) -> str:
    """The folder under ``models/`` (and ``embeddings/``) of ``piece_id.model``: ``snippet``, ``snippet_cca``,
    or a ``snippet_variants`` key (its CCA-refined model, e.g. ``snippet_variant_cca/att42``: "+Att" piece
    identification, trained by the attention target's rules)."""
    name = params["piece_id"]["model"]
    if name in ("snippet", "snippet_cca"):
        return name
    return snippet_variant_model(params["snippet_variants"], name)[len("models/"):-len("/model.pt")]


def snippet_variant_keys(variants: dict, name: str) -> list[str]:
    """The params keys ``train_snippet --variant name`` reads (the entropy weight only with attention)."""
    keys = ["seed", "training", "train_snippet", f"snippet_variants.{name}"]
    return keys + (["attention.entropy_weight"] if variants[name]["attention"] else [])


# --- snippet variants downstream: "+Att" passage models and BL rows (issue 14 item 6) -----------------------

PASSAGE_BASE = {(None, False): "RNN", ("snippet", False): "RNN-FT", ("snippet", True): "RNN-FZ",
                ("snippet_cca", False): "RNN-FT-CCA", ("snippet_cca", True): "RNN-FZ-CCA"}


def check_downstream(params: dict) -> None:
    """Raise ``ValueError`` naming the key when ``attention.passage_variants`` / ``attention.baseline_variants``
    refer to a snippet variant that does not exist, reuse a ``passage_variants`` name or freeze random CNNs."""
    att, variants = params["attention"], params["snippet_variants"]
    for name, v in att["passage_variants"].items():
        key = f"attention.passage_variants.{name}"
        if name in params["passage_variants"] or name.startswith("bl_"):
            raise ValueError(f"{key}: '{name}' is a passage_variants key or starts with bl_ (the BL rows' prefix)")
        if v["snippet_variant"] not in variants:
            raise ValueError(f"{key}.snippet_variant: '{v['snippet_variant']}' is not one of snippet_variants {sorted(variants)}")
        if v["freeze_cnn"] and v["init"] is None:
            raise ValueError(f"{key}: freeze_cnn needs an init model (it would freeze random CNNs)")
    for name in att["baseline_variants"]:
        if name not in variants:
            raise ValueError(f"attention.baseline_variants: '{name}' is not one of snippet_variants {sorted(variants)}")


def downstream_label(params: dict, row: str) -> str:
    """Table name of a downstream row: ``bl_<sv>`` -> ``BL+Att (att42)`` / ``BL (ctx42)``; a key of
    ``attention.passage_variants`` -> e.g. ``RNN-FT-CCA+Att (att42)``."""
    variants = params["snippet_variants"]
    if row.startswith("bl_") and row[3:] in variants:
        sv, base = row[3:], "BL"
    else:
        v = params["attention"]["passage_variants"][row]
        sv, base = v["snippet_variant"], PASSAGE_BASE[(v["init"], v["freeze_cnn"])]
    return f"{base}{'+Att' if variants[sv]['attention'] else ''} ({sv})"


def downstream_models(params: dict) -> dict[str, str]:
    """Row -> model artifact of the downstream evaluations: ``bl_<sv>`` (each ``attention.baseline_variants``
    entry: as trained or CCA-refined, as ``evaluation.baseline_model`` chooses for BL), then the passage models
    ``models/passage_att/<name>/model.pt`` (``attention.passage_variants``)."""
    refined = params["evaluation"]["baseline_model"] == "snippet_cca"
    att = params["attention"]
    return {**{f"bl_{sv}": snippet_variant_model(params["snippet_variants"], sv, refined) for sv in att["baseline_variants"]},
            **{name: f"models/passage_att/{name}/model.pt" for name in att["passage_variants"]}}


def downstream_init(params: dict, name: str) -> list[str] | str:
    """The ``--init`` artifact of ``attention.passage_variants.<name>`` ([] from scratch)."""
    v = params["attention"]["passage_variants"][name]
    if v["init"] is None:
        return []
    return snippet_variant_model(params["snippet_variants"], v["snippet_variant"], refined=v["init"] == "snippet_cca")
