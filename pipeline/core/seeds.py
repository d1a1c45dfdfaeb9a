"""Per-piece seeds of the seeded data stages (scenarios): the same for a piece whatever else the run holds."""
from __future__ import annotations

import hashlib


def piece_seed(seed: int, stage: str, piece: str) -> int:
    """A stage's seed for one piece (64 bits of SHA-256 of ``seed:stage:piece``), independent between stages."""
    return int(hashlib.sha256(f"{seed}:{stage}:{piece}".encode()).hexdigest()[:16], 16)
