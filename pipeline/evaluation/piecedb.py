"""The piece database of piece identification and fragment search: the output of
:mod:`pipeline.evaluation.piece_windows` loaded as one window sequence per piece (sheet) and per
performance (audio), with the windows' positions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class Windows:
    """The stage input of :mod:`pipeline.evaluation.piece_windows`, as sequences per piece / performance."""

    def __init__(self, npz: Path):
        folder = npz.parent
        z = np.load(npz)
        self.pieces = pd.read_csv(folder / "pieces.csv")
        self.perfs = pd.read_csv(folder / "performances.csv")
        self.piece_row = {p: i for i, p in enumerate(self.pieces.piece)}
        self.test_pieces = [p for p, s in zip(self.pieces.piece, self.pieces.split) if s == "test"]
        self.sheet = self._split(z["sheet"], z["sheet_piece"], len(self.pieces))         # per piece (W, dim)
        self.sheet_x = self._split(z["sheet_x"], z["sheet_piece"], len(self.pieces))     # window centres [px]
        self.audio = self._split(z["audio"], z["audio_perf"], len(self.perfs))           # per performance
        self.audio_frame = self._split(z["audio_frame"], z["audio_perf"], len(self.perfs))  # window starts
        # tempo hypotheses (method dtw_tempo): per factor, every performance's windows after retiming
        self.tempo_factors = [float(f) for f in z["tempo_factors"]] if "tempo_factors" in z else []
        self.retimed = {f: self._split(z["hyp_audio"][z["hyp_factor"] == k], z["hyp_perf"][z["hyp_factor"] == k],
                                       len(self.perfs)) for k, f in enumerate(self.tempo_factors)}

    @staticmethod
    def _split(emb: np.ndarray, owner: np.ndarray, n: int) -> list[np.ndarray]:
        order = np.argsort(owner, kind="stable")
        return np.split(emb[order], np.cumsum(np.bincount(owner, minlength=n))[:-1])

    def perf_row(self, piece: str, rho: float, role: str) -> int:
        m = (self.perfs.piece == piece) & np.isclose(self.perfs.tempo_ratio, rho) & self.perfs.role.str.contains(role)
        return int(np.flatnonzero(m)[0])

    def database_row(self, piece: str, rho: float) -> int:
        """Performance row of a piece's database audio when the queries are at ρ: a test piece's
        rendering at ρ, any other piece's ρ = 1 rendering."""
        if piece in self.test_pieces:
            return self.perf_row(piece, rho, "query")
        return self.perf_row(piece, 1.0, "database")

    def database_audio(self, rho: float, factor: float = 1.0) -> list[np.ndarray]:
        """Per piece (``pieces.csv`` order): its database audio (:meth:`database_row`), retimed by ``factor``."""
        return [self.audio_at(self.database_row(p, rho), factor) for p in self.pieces.piece]

    def audio_at(self, row: int, factor: float = 1.0) -> np.ndarray:
        """(W, dim) windows of performance ``row`` after retiming its spectrogram by ``factor`` (1: as played)."""
        if factor == 1.0:
            return self.audio[row]
        if factor not in self.retimed:
            raise KeyError(f"no windows retimed by {factor:g} (the piece windows hold {self.tempo_factors}): rebuild "
                           "them with the method dtw_tempo and this factor in piece_id.tempo_hypotheses.factors")
        return self.retimed[factor][row]

    def tempo_inputs(self, queried: list[str], rho: float, factors: list[float]) -> dict:
        """Per factor, :meth:`inputs` with the audio side retimed by it (A2S: the queries; S2A: the database)."""
        return {f: {"a2s": ([self.audio_at(self.perf_row(p, rho, "query"), f) for p in queried], list(self.sheet)),
                    "s2a": ([self.sheet[self.piece_row[p]] for p in queried], self.database_audio(rho, f))}
                for f in factors}

    def inputs(self, queried: list[str], rho: float) -> dict:
        """Per direction, (queries, database) of identifying the ``queried`` pieces at ρ: A2S their
        renderings at ρ against every piece's sheet; S2A their sheets against every piece's database
        audio (:meth:`database_audio`). Lists of (W, dim) arrays; databases in ``pieces.csv`` order."""
        return {"a2s": ([self.audio[self.perf_row(p, rho, "query")] for p in queried], list(self.sheet)),
                "s2a": ([self.sheet[self.piece_row[p]] for p in queried], self.database_audio(rho))}
