"""Embedding with trained models: snippets, passages, and the cache of frozen CNN features.

Shared by training (validation), refinement and evaluation; it imports no stage module.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from pipeline.core.constants import SHEET_CONTEXT_PX, SPEC_CONTEXT_FRAMES
from pipeline.models import snippets as S
from pipeline.models.networks import PassageModel, SnippetModel
from pipeline.models.snippets import SplitBank, passage_audio, passage_batch, passage_sheet, snippet_batch
from pipeline.models.training import atomic_save, load_model

PASSAGE_COLUMNS = ["piece", "performance", "system", "x0", "x1", "f0", "f1"]
DEFAULT_GEOMETRY = {"audio_context_frames": SPEC_CONTEXT_FRAMES, "attention": False, "sheet_context_px": SHEET_CONTEXT_PX}
FEATURE_CACHE_VERSION = 3     # of the stored layout (part of the key): {passage row: (sheet, audio) features}


def embed_snippets(model: SnippetModel, bank: SplitBank, rows: np.ndarray, batch: int = 512, pre_cca=False):
    """(N, dim) sheet and audio embeddings of snippet-table ``rows``, cut to the model's geometry
    (audio context, sheet width: :meth:`SnippetModel.geometry`), without augmentation."""
    xs, ys = [], []
    for i in range(0, len(rows), batch):
        s, a = snippet_batch(bank, rows[i:i + batch], context_frames=model.context_frames, sheet_px=model.sheet_px)
        x, y = model(s, a, pre_cca=pre_cca)
        xs.append(x.float()), ys.append(y.float())
    return torch.cat(xs), torch.cat(ys)


# --- passage windows of a model's geometry ----------------------------------------------------------

def _windows_sheet(bank: SplitBank, rows: np.ndarray, hop_half: int, width: int):
    """:func:`passage_sheet` for sheet windows ``width`` px wide (full resolution) at the same centres."""
    t = bank.passages.iloc[rows]
    cx, lo, hi = [], [], []
    for px, x0, x1 in zip(t.px.to_numpy(), t.x0.to_numpy(), t.x1.to_numpy()):
        gx0, gx1 = px + x0, px + x1
        c = gx0 + S.sheet_starts(x1 - x0, hop_half)
        cx.append(c), lo.append(np.full(len(c), gx0)), hi.append(np.full(len(c), gx1))
    cat = lambda xs: torch.as_tensor(np.concatenate(xs))                    # noqa: E731
    return S.cut_sheet(bank.sheet, cat(cx).double(), cat(lo), cat(hi), width=width), torch.as_tensor([len(c) for c in cx])


def _windows_audio(bank: SplitBank, rows: np.ndarray, hop: int, frames: int):
    """:func:`passage_audio` for audio windows of ``frames`` frames: the same hops and window centres (a window
    of T frames starts ``T // 2 - 10`` frames before the 1-s one, whose centre it shares, as the snippet
    variants' training pairs), and the same bounds (the passage's own audio span; silence beyond it)."""
    t = bank.passages.iloc[rows]
    shift = SPEC_CONTEXT_FRAMES // 2 - frames // 2
    fs, flo, fhi = [], [], []
    for pf, f0, f1 in zip(t.pf.to_numpy(), t.f0.to_numpy(), t.f1.to_numpy()):
        gf0, gf1 = pf + f0, pf + f1
        s = gf0 + S.audio_starts(f1 - f0, hop) + shift
        fs.append(s), flo.append(np.full(len(s), gf0)), fhi.append(np.full(len(s), gf1))
    cat = lambda xs: torch.as_tensor(np.concatenate(xs))                    # noqa: E731
    return S.cut_spec(bank.spec, cat(fs), cat(flo), cat(fhi), frames=frames), torch.as_tensor([len(s) for s in fs])


def model_passage_sheet(bank: SplitBank, rows: np.ndarray, hop_half: int, sheet_px: int = SHEET_CONTEXT_PX):
    """Sheet window sequences of passages ``rows`` for a model reading ``sheet_px``-wide windows:
    (N_s, 1, 80, sheet_px / 2) and the lengths (B,). 180 px: :func:`passage_sheet` itself."""
    if sheet_px == SHEET_CONTEXT_PX:
        return passage_sheet(bank, rows, hop_half)
    return _windows_sheet(bank, rows, hop_half, sheet_px)


def model_passage_audio(bank: SplitBank, rows: np.ndarray, hop: int, frames: int = SPEC_CONTEXT_FRAMES):
    """Audio window sequences of passages ``rows`` for a model reading ``frames``-frame windows:
    (N_a, 1, 92, frames) and the lengths (B,). 20 frames: :func:`passage_audio` itself."""
    if frames == SPEC_CONTEXT_FRAMES:
        return passage_audio(bank, rows, hop)
    return _windows_audio(bank, rows, hop, frames)


def model_passage_batch(model: PassageModel, bank: SplitBank, rows: np.ndarray, sheet_hop_half: int, audio_hop: int):
    """:func:`passage_batch` with the windows of ``model``'s geometry (:meth:`PassageModel.geometry`);
    for the default geometry :func:`passage_batch` itself."""
    g = model.geometry()
    if g["audio_context_frames"] == SPEC_CONTEXT_FRAMES and g["sheet_context_px"] == SHEET_CONTEXT_PX:
        return passage_batch(bank, rows, sheet_hop_half, audio_hop)
    sheet, n_s = model_passage_sheet(bank, rows, sheet_hop_half, g["sheet_context_px"])
    audio, n_a = model_passage_audio(bank, rows, audio_hop, g["audio_context_frames"])
    return sheet, audio, n_s, n_a


def sheet_keys(bank: SplitBank, rows: np.ndarray) -> list[tuple]:
    """What a passage's sheet snippets depend on: (piece, x0, x1). Renderings of one system at other
    tempi or soundfonts share them, so a :class:`FeatureCache` ``sheet_memo`` shared by the banks of
    one model's evaluations at every test tempo (Exp 3) computes each system's sheet side once."""
    p = bank.passages.iloc[rows]
    return list(zip(p.piece.tolist(), p.x0.tolist(), p.x1.tolist()))


class FeatureCache:
    """CNN outputs of the snippets of a split's passages under frozen CNNs (:attr:`PassageModel.features_are_fixed`),
    computed in float32 when a passage is first needed and kept; served per batch with the encoders'
    CCA projection applied. ``sheet_memo`` (see :func:`sheet_keys`) may be shared with the caches of
    other banks of the same model: a system's sheet side is then computed once.

    With ``store`` (a folder), :meth:`save` also keeps them on disk under a key of the CNN weights, the
    split's arrays and tables and the hops, and a later job with the same frozen CNNs (the other FZ
    variant, every point of the dimension sweep) starts from them: a pure cache, outside every
    output, safe to delete."""

    BLOCK = 32    # passages computed together

    def __init__(self, model: PassageModel, bank: SplitBank, hops: tuple, store: Path | None = None, log=print,
                 sheet_memo: dict | None = None):
        self.model, self.bank, self.hops = model, bank, hops
        self.sheet_memo = {} if sheet_memo is None else sheet_memo
        # sheet sides are computed by fixed blocks of the split's distinct systems (sorted keys)
        self.row_keys = sheet_keys(bank, np.arange(len(bank.passages)))
        first_row = {}
        for r, k in enumerate(self.row_keys):
            first_row.setdefault(k, r)
        distinct = sorted(first_row)
        self.sheet_blocks = [distinct[i:i + self.BLOCK] for i in range(0, len(distinct), self.BLOCK)]
        self.sheet_block_of = {k: i // self.BLOCK for i, k in enumerate(distinct)}
        self.first_row = first_row
        self.path = store / f"{self.key(model, bank, hops)}.pt" if store is not None else None
        self.rows = self._load()
        if self.rows:
            log(f"frozen snippet features of {len(self.rows)} passages loaded from {self.path}")

    @staticmethod
    def key(model: PassageModel, bank: SplitBank, hops: tuple) -> str:
        table = bank.passages[PASSAGE_COLUMNS].values.tolist()
        key = [FEATURE_CACHE_VERSION, list(hops), table]
        if model.geometry() != DEFAULT_GEOMETRY:                 # a snippet variant's windows (the default key unchanged)
            key.append(model.geometry())
        h = hashlib.sha256(json.dumps(key).encode())
        for t in (bank.sheet, bank.spec, *model.sheet.cnn.state_dict().values(), *model.audio.cnn.state_dict().values()):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:20]

    def _load(self) -> dict:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            return {int(r): (s.to(self.bank.device), a.to(self.bank.device))
                    for r, (s, a) in torch.load(self.path, weights_only=True).items()}
        except Exception:               # unreadable or of another layout: recompute (it is only a cache)
            return {}

    def save(self) -> None:
        """Add this job's passages to the file (merged with what other jobs stored meanwhile)."""
        if self.path is not None:
            merged = {**self._load(), **self.rows}
            atomic_save({r: (s.cpu(), a.cpu()) for r, (s, a) in merged.items()}, self.path)

    def _sheet_block(self, b: int) -> None:
        keys = self.sheet_blocks[b]
        sheet, n_s = model_passage_sheet(self.bank, np.array([self.first_row[k] for k in keys]), self.hops[0],
                                         self.model.sheet_px)
        for k, z in zip(keys, torch.split(self.model.sheet.cnn(sheet).float(), n_s.tolist())):
            self.sheet_memo.setdefault(k, z)

    @torch.no_grad()
    def batch(self, rows: np.ndarray):
        """(zs (N_s, d), za (N_a, d), n_s (B,), n_a (B,)) GRU inputs of passage-table ``rows``, in order."""
        # computed by fixed blocks (of rows for the audio, of distinct systems for the sheet), so a
        # passage's features never depend on which job or epoch asked first (the CNN's float rounding
        # may depend on its batch)
        blocks = sorted({r // self.BLOCK for r in rows.tolist() if r not in self.rows})
        with torch.autocast(self.bank.device.type, enabled=False):
            for b in blocks:
                chunk = np.arange(b * self.BLOCK, min((b + 1) * self.BLOCK, len(self.bank.passages)))
                keys = [self.row_keys[r] for r in chunk.tolist()]
                for sb in sorted({self.sheet_block_of[k] for k in keys if k not in self.sheet_memo}):
                    self._sheet_block(sb)
                audio, n_a = model_passage_audio(self.bank, chunk, self.hops[1], self.model.context_frames)
                za = torch.split(self.model.audio.cnn(audio).float(), n_a.tolist())
                self.rows.update({r: (self.sheet_memo[k], a) for r, k, a in zip(chunk.tolist(), keys, za)})
        pairs = [self.rows[r] for r in rows.tolist()]
        return (self.model.sheet.project(torch.cat([s for s, _ in pairs])),
                self.model.audio.project(torch.cat([a for _, a in pairs])),
                torch.tensor([len(s) for s, _ in pairs]), torch.tensor([len(a) for _, a in pairs]))


def summarize(model: PassageModel, zs, za, n_s, n_a):
    """Passage embeddings from cached snippet features (the part of :class:`PassageModel` after the CNNs)."""
    return model.sheet.summarize(zs, n_s), model.audio.summarize(za, n_a)


@torch.no_grad()
def embed_cached(model: PassageModel, cache: FeatureCache, rows: np.ndarray, batch: int = 64):
    """(N, emb) sheet and audio embeddings of passage-table ``rows`` from a :class:`FeatureCache`."""
    xs, ys = zip(*(summarize(model, *cache.batch(rows[i:i + batch])) for i in range(0, len(rows), batch)))
    return torch.cat(xs).float(), torch.cat(ys).float()


@torch.no_grad()
def embed_passages(model: PassageModel, bank: SplitBank, rows: np.ndarray, hops: tuple, batch: int = 64):
    """(N, emb) sheet and audio embeddings of passage-table ``rows`` (model in eval mode)."""
    xs, ys = [], []
    for i in range(0, len(rows), batch):
        x, y = model(*model_passage_batch(model, bank, rows[i:i + batch], *hops))
        xs.append(x.float()), ys.append(y.float())
    return torch.cat(xs), torch.cat(ys)


def passage_geometry(meta: dict) -> dict:
    """:class:`PassageModel` geometry arguments from a passage artifact's meta (none stored: the default model)."""
    return {"audio_context_frames": meta.get("audio_context_frames", SPEC_CONTEXT_FRAMES),
            "attention": meta.get("attention", False), "sheet_px": meta.get("sheet_context_px", SHEET_CONTEXT_PX)}


def load_passage_model(path: Path) -> tuple[PassageModel, dict]:
    """Rebuild a trained passage model (eval mode) and its meta from its artifact."""
    art = load_model(path)
    m = art["meta"]
    model = PassageModel(m["snippet_dim"], m["rnn_hidden"], m["emb_dim"], freeze_cnn=m["freeze_cnn"],
                         **passage_geometry(m))
    sd = art["state_dict"]
    for enc in (model.sheet, model.audio):
        prefix = "sheet." if enc is model.sheet else "audio."
        if sd[prefix + "cca_u"].numel():
            enc.set_cca(sd[prefix + "cca_u"], sd[prefix + "cca_mean"])
    model.load_state_dict(sd)
    return model.eval(), m
