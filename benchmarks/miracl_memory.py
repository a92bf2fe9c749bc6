"""Benchmark: peak memory and time of the streamed MIRACL search against the corpus size.

    python benchmarks/miracl_memory.py [--sizes 10000 50000 100000 200000] [--chunk 50000] [--queries 1000]
                                       [--dim 384] [--whole-corpus]

For each size, writes a synthetic corpus in MIRACL's layout to a temporary folder
(``miracl-corpus-v1.0-zz/docs-<n>.jsonl.gz``, ``--file-size`` passages a file, lines
``{"docid": "<article>#<n>", "title", "text"}``) with gzipped topics/qrels as vendored in data/raw/miracl,
then runs ``hybridbatch.evaluation.miracl.evaluate_miracl`` (streamed, ``--chunk`` passages at a time) in a fresh
subprocess with a hashing bag-of-words stand-in encoder (``--dim``, L2-normalised float32), and prints
its wall time and peak RSS: the child's ``VmHWM`` and, as the parent sees it, ``ru_maxrss`` from
``os.wait4``. ``base`` is the child's RSS once Python, torch and the encoder are loaded, before the
search. With ``--whole-corpus`` each size is also run the old way (load the corpus, encode it in one call,
score it), for contrast. Expected: the streamed peak is flat once the corpus exceeds one chunk.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LANG = "zz"
WIDTHS = (9, 13, 8, 6, 11, 10, 10)


def write_corpus(root: Path, n: int, n_queries: int, file_size: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Synthetic corpus, topics and qrels under ``root``; returns (topics, qrels, corpus folder)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, int(rng.integers(3, 10)))) for _ in range(30_000)]
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    folder = root / "corpus" / f"miracl-corpus-v1.0-{LANG}"
    folder.mkdir(parents=True)
    picks = rng.choice(n, size=n_queries, replace=False)
    picked = {int(i): q for q, i in enumerate(picks)}
    topics, qrels = [""] * n_queries, [""] * n_queries
    article = 0
    for start in range(0, n, file_size):
        with gzip.open(folder / f"docs-{start // file_size}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as f:
            stop = min(start + file_size, n)
            lengths = rng.integers(40, 100, size=stop - start)
            words = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
            pos = 0
            for i, length in zip(range(start, stop), lengths):
                if i % 10 == 0:
                    article += 1
                    title = " ".join(vocab[w] for w in rng.choice(len(vocab), 3, p=p))
                text = " ".join(vocab[w] for w in words[pos:pos + length])
                docid = f"{article}#{i % 10}"
                if i in picked:
                    q = picked[i]
                    query = " ".join(vocab[w] for w in rng.choice(words[pos:pos + length], 6))
                    topics[q], qrels[q] = f"{1000 + q}\t{query}", f"{1000 + q}\tQ0\t{docid}\t1"
                pos += length
                f.write(json.dumps({"docid": docid, "title": title, "text": text}) + "\n")
    paths = []
    for name, lines in (("topics", topics), ("qrels", qrels)):
        path = root / f"{name}.miracl-v1.0-{LANG}-dev.tsv.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        paths.append(path)
    return paths[0], paths[1], root / "corpus"


class HashingEncoder:
    """Stand-in encoder: hashed bag of words (blake2b of each token mod ``dim``), L2-normalised float32 rows."""

    def __init__(self, dim: int = 384) -> None:
        self.dim, self._bucket = dim, {}

    def _id(self, token: str) -> int:
        b = self._bucket.get(token)
        if b is None:
            import hashlib

            b = self._bucket[token] = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(),
                                                     "little") % self.dim
        return b

    def encode(self, texts, kind, **kw):
        import torch

        m = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            m[i] = np.bincount([self._id(t) for t in text.split()], minlength=self.dim)
        m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        return torch.from_numpy(m)


def _status(key: str) -> int:
    """``VmHWM`` / ``VmRSS`` of this process in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def child(args: argparse.Namespace) -> None:
    """One measurement, in a fresh process: prints a JSON line."""
    import torch

    from hybridbatch.evaluation import miracl

    enc = HashingEncoder(args.dim)
    base = _status("VmRSS")
    t0 = time.perf_counter()
    if args.mode == "streamed":
        out = miracl.evaluate_miracl(enc, args.topics, args.qrels, args.corpus, chunk_size=args.chunk)
        n = out["n_passages"]
    else:  # the old whole-corpus path: all passages in a DataFrame, encoded in one call, then scored
        topics = miracl.load_topics(args.topics)
        corpus = miracl.load_corpus(args.corpus, LANG).sort_values("docid", ascending=False)
        passages = enc.encode(miracl.passage_texts(corpus), "passage")
        queries = enc.encode(list(topics.values()), "query")
        for start in range(0, len(queries), 256):
            torch.topk(queries[start:start + 256] @ passages.T, 100, dim=1)
        n = len(corpus)
    wall = time.perf_counter() - t0
    print(json.dumps({"n": n, "wall_s": wall, "base_kib": base, "hwm_kib": _status("VmHWM")}))


def measure(script: Path, mode: str, paths: tuple[Path, Path, Path], args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(script), "--child", mode, "--topics", str(paths[0]), "--qrels", str(paths[1]),
           "--corpus", str(paths[2]), "--chunk", str(args.chunk), "--dim", str(args.dim)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(cmd)}")
    return {**json.loads(stdout.strip().splitlines()[-1]), "maxrss_kib": usage.ru_maxrss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    ap.add_argument("--chunk", type=int, default=50_000, help="passages per streamed chunk")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--file-size", type=int, default=100_000, help="passages per docs-<n>.jsonl.gz file")
    ap.add_argument("--whole-corpus", action="store_true", help="also measure the old whole-corpus path")
    ap.add_argument("--child", choices=["streamed", "whole-corpus"], dest="mode", help=argparse.SUPPRESS)
    ap.add_argument("--topics", help=argparse.SUPPRESS)
    ap.add_argument("--qrels", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        return child(args)
    modes = ["streamed"] + (["whole-corpus"] if args.whole_corpus else [])
    print(f"chunk {args.chunk} passages, {args.queries} queries, dim {args.dim}, {args.file_size} passages a file; "
          f"RSS in MiB (base: after imports, before the search)")
    header = ("passages", "mode", "wall s", "base", "peak VmHWM", "ru_maxrss", "peak-base")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, WIDTHS)))
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="miracl-bench-") as tmp:
            paths = write_corpus(Path(tmp), n, min(args.queries, n), args.file_size)
            for mode in modes:
                r = measure(Path(__file__).resolve(), mode, paths, args)
                assert r["n"] == n
                mib = [r[key] / 1024 for key in ("base_kib", "hwm_kib", "maxrss_kib")]
                cells = (f"{n}", mode, f"{r['wall_s']:.1f}", *(f"{m:.0f}" for m in (*mib, mib[1] - mib[0])))
                print(" ".join(f"{c:>{w}}" for c, w in zip(cells, WIDTHS)), flush=True)


if __name__ == "__main__":
    main()
