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


def snippet_variant_keys(variants: dict, name: str) -> list[str]:
    """The params keys ``train_snippet --variant name`` reads (the entropy weight only with attention)."""
    keys = ["seed", "training", "train_snippet", f"snippet_variants.{name}"]
    return keys + (["attention.entropy_weight"] if variants[name]["attention"] else [])
