"""Query latency: embed one passage and rank it against every test passage.

    python benchmarks/query_latency.py [--model models/passage/rnn_ft_cca/model.pt]
        [--baseline models/snippet_cca/model.pt] [--device cpu|cuda]

The database (sheet embeddings of all test passages) is built once; each query is then one audio
passage of the test split, timed end to end: cut its snippets from the spectrogram, run the
passage model (batch of one), cosine distances to the database, full ranking. For comparison, the
snippet-voting baseline on the same queries (cut + embed the query's snippets, k-NN over all
database snippets, vote). Ranking alone is also timed against a synthetic database of
``--scale-to`` passages, to show how the cost grows with the collection (MSMD test: ~534 passages).
Prints median and 90th-percentile milliseconds; writes ``--out`` JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.metrics import cosine_distances  # noqa: E402
from pipeline.evaluation.voting import vote_scores, vote_tables  # noqa: E402
from pipeline.models.embedding import embed_passages, load_passage_model  # noqa: E402
from pipeline.models.networks import SnippetModel  # noqa: E402
from pipeline.models.snippets import load_split, passage_batch  # noqa: E402
from pipeline.models.training import load_model  # noqa: E402


def timed(fn, n: int, device) -> np.ndarray:
    """Milliseconds of ``fn(i)`` for i in range(n), after one warm-up call."""
    fn(0)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(1e3 * (time.perf_counter() - t))
    return np.array(out)


def summary(ms: np.ndarray) -> dict:
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "n": int(ms.size)}


@torch.no_grad()
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/passage/rnn_ft_cca/model.pt"))
    ap.add_argument("--baseline", type=Path, default=Path("models/snippet_cca/model.pt"))
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n-candidates", type=int, default=25)
    ap.add_argument("--scale-to", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/query_latency.json"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    bank = load_split(args.dataset, "test", tempo_range=(1.0, 1.0)).to(device)
    n = len(bank.passages)
    model, meta = load_passage_model(args.model)
    model.to(device)
    hops = (meta["sheet_hop_half_px"], meta["audio_hop_frames"])
    db_sheet, _ = embed_passages(model, bank, np.arange(n), hops)

    def rnn_query(i):
        _, audio, _, n_a = passage_batch(bank, np.array([i]), *hops)
        q = model.audio(audio, n_a)
        cosine_distances(q, db_sheet).argsort(dim=1)

    snip = SnippetModel.from_artifact(load_model(args.baseline)).to(device)
    sheet, _, n_s, _ = passage_batch(bank, np.arange(n), *hops)
    db_snip, db_owner = snip.embed_sheet(sheet), np.repeat(np.arange(n), n_s.numpy())

    def bl_query(i):
        _, audio, _, n_a = passage_batch(bank, np.array([i]), *hops)
        scores = vote_scores(*vote_tables(snip.embed_audio(audio), np.zeros(int(n_a[0]), np.int64), db_snip,
                                          db_owner, n, args.n_candidates))
        np.argsort(scores[0].numpy(), kind="stable")

    big = torch.nn.functional.normalize(torch.randn(args.scale_to, db_sheet.shape[1], device=device), dim=1)
    q1 = db_sheet[:1]
    res = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
           "model": str(args.model), "n_test_passages": n, "db_snippets": int(len(db_snip)),
           "rnn_query": summary(timed(rnn_query, n, device)),
           "bl_query": summary(timed(bl_query, n, device)),
           f"rank_only_{n}": summary(timed(lambda i: cosine_distances(q1, db_sheet).argsort(dim=1), 50, device)),
           f"rank_only_{args.scale_to}": summary(timed(lambda i: cosine_distances(q1, big).argsort(dim=1), 50, device))}
    res["bl_over_rnn"] = res["bl_query"]["median_ms"] / res["rnn_query"]["median_ms"]
    for k, v in res.items():
        print(f"{k:>22}: {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
