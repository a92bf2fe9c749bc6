"""Benchmark: encoding throughput of DualEncoder.encode vs SentenceTransformer.encode (same model, texts).

    python benchmarks/encode.py [--model models/e5-small] [--n 2000] [--dataset xquad_r]

Prints texts/s for both, their ratio (target >= 1.2), the max embedding difference, and peak RSS. Both
encoders run fp32 on the same threads, prefixes and max length; sentence-transformers gets the same batch
size budget (its default batch_size 32, sorted by length internally).
"""

from __future__ import annotations

import argparse
import resource
import time

import pandas as pd
import torch

from hybridbatch.model.encoder import DualEncoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/e5-small")
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--dataset", default="xquad_r")
    ap.add_argument("--n", type=int, default=2000, help="candidate sentences to encode")
    ap.add_argument("--batch-size", type=int, default=64, help="sentence-transformers batch size")
    args = ap.parse_args()
    cs = pd.read_parquet(f"{args.prepared}/candidates.parquet")
    texts = cs.loc[cs["dataset"] == args.dataset, "sentence"].sample(n=args.n, random_state=0).tolist()

    enc = DualEncoder(args.model)
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(args.model, device="cpu")
    st.max_seq_length = enc.settings.max_length
    prefixed = enc.prefix(texts, "passage")

    enc.encode(texts[:64], "passage")  # warm-up both
    st.encode(prefixed[:64], batch_size=args.batch_size)
    t0 = time.perf_counter()
    ours = enc.encode(texts, "passage")
    t1 = time.perf_counter()
    theirs = torch.from_numpy(st.encode(prefixed, batch_size=args.batch_size, normalize_embeddings=True))
    t2 = time.perf_counter()
    ours_rate, st_rate = len(texts) / (t1 - t0), len(texts) / (t2 - t1)
    print(f"texts: {len(texts)} {args.dataset} candidate sentences, torch threads {torch.get_num_threads()}")
    print(f"hybridbatch DualEncoder.encode : {ours_rate:8.1f} texts/s ({t1 - t0:.1f} s)")
    print(f"SentenceTransformer.encode     : {st_rate:8.1f} texts/s ({t2 - t1:.1f} s)")
    print(f"ratio (ours / sentence-transformers): {ours_rate / st_rate:.2f}  (target >= 1.2)")
    print(f"max |difference| of embeddings: {float((ours - theirs).abs().max()):.2e}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
