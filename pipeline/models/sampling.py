"""Which items a training epoch and a validation use: seeded epoch batches, the fixed validation subset,
and groups of items that show the same thing (other renderings, masked as negatives)."""
from __future__ import annotations

import numpy as np
import torch


def epoch_rows(n_items: int, n_train: int, batch: int, gen: torch.Generator) -> list[np.ndarray]:
    """``n_train`` item indices in batches: permutations of all items, concatenated as needed
    (without replacement within each pass, as lcasr's ``CustomSampler``); the last short batch is dropped."""
    if n_items == 0:
        raise ValueError("no training items")
    passes = -(-n_train // n_items)
    order = torch.cat([torch.randperm(n_items, generator=gen) for _ in range(passes)])[:n_train].numpy()
    return [order[i:i + batch] for i in range(0, len(order) - batch + 1, batch)] or [order]


def valid_rows(n_items: int, n_valid: int) -> np.ndarray:
    """Deterministic, evenly spaced subset (lcasr's ``linspace`` selection)."""
    return np.unique(np.linspace(0, n_items - 1, min(n_items, n_valid)).astype(int))


@torch.no_grad()
def item_groups(table, columns: list[str]) -> torch.Tensor:
    """(len(table),) int ids: rows with equal ``columns`` show the same item (other renderings of it)."""
    import pandas as pd
    return torch.from_numpy(pd.MultiIndex.from_frame(table[columns]).factorize()[0].astype(np.int64))
