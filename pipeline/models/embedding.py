"""Embedding with trained models: snippets, passages, and the cache of frozen CNN features.

Shared by training (validation), refinement and evaluation; it imports no stage module.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from pipeline.models.networks import PassageModel, SnippetModel
from pipeline.models.snippets import SplitBank, passage_audio, passage_batch, passage_sheet, snippet_batch
from pipeline.models.training import atomic_save, load_model

PASSAGE_COLUMNS = ["piece", "performance", "system", "x0", "x1", "f0", "f1"]
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
        h = hashlib.sha256(json.dumps([FEATURE_CACHE_VERSION, list(hops), table]).encode())
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
        sheet, n_s = passage_sheet(self.bank, np.array([self.first_row[k] for k in keys]), self.hops[0])
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
                audio, n_a = passage_audio(self.bank, chunk, self.hops[1])
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
        x, y = model(*passage_batch(bank, rows[i:i + batch], *hops))
        xs.append(x.float()), ys.append(y.float())
    return torch.cat(xs), torch.cat(ys)


def load_passage_model(path: Path) -> tuple[PassageModel, dict]:
    """Rebuild a trained passage model (eval mode) and its meta from its artifact."""
    art = load_model(path)
    m = art["meta"]
    model = PassageModel(m["snippet_dim"], m["rnn_hidden"], m["emb_dim"], freeze_cnn=m["freeze_cnn"])
    sd = art["state_dict"]
    for enc in (model.sheet, model.audio):
        prefix = "sheet." if enc is model.sheet else "audio."
        if sd[prefix + "cca_u"].numel():
            enc.set_cca(sd[prefix + "cca_u"], sd[prefix + "cca_mean"])
    model.load_state_dict(sd)
    return model.eval(), m
