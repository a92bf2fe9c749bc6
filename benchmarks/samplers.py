"""Benchmark: build time, memory and time per batch of the batch samplers at scale (synthetic data).

    python benchmarks/samplers.py                     # 100k and 500k questions
    python benchmarks/samplers.py 20000 --batches 300 --batch-size 100

Synthetic source: N questions, each in all 9 languages (72 cross-lingual pairs per question: the largest
pair count for 9 languages); answer groups one per question except that every 10th question shares its
group with the next one. For each strategy (xx, xx-mixed, xy in each xy_sampling, hybrid with alpha 0.5
exact over 1000 steps) the sampler is built in a forked child process, which reports the build seconds,
the peak RSS increase over the RSS at the fork (VmHWM - VmRSS from /proc/self/status: build and draws)
and the mean milliseconds per batch (after 5 warm-up batches). Targets: <= 20 s and <= 1 GB to build at
500k, <= 5 ms per batch of 100.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

from hybridbatch.sampling.build import build_sampler

LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr"]
CASES = [("xx", "pairs"), ("xx-mixed", "pairs"), ("xy", "pairs"), ("xy", "language-pairs"), ("xy", "languages"),
         ("hybrid", "pairs")]


def synthetic(n: int) -> tuple[dict[str, list[str]], dict[str, int]]:
    langs_of = {f"q{i:07d}": list(LANGS) for i in range(n)}
    groups, g = {}, 0
    for i in range(n):
        groups[f"q{i:07d}"] = g
        if i % 10 != 0:  # q0 and q1 share a group, q10 and q11, ...
            g += 1
    return langs_of, groups


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _run_case(langs_of, groups, strategy, xy_sampling, batch_size, n_batches, out) -> None:
    rss0 = _status_kib("VmRSS")
    t0 = time.perf_counter()
    s = build_sampler(strategy, langs_of, groups, batch_size, seed=0, alpha=0.5, xy_sampling=xy_sampling,
                      steps=1000)
    build_s = time.perf_counter() - t0
    for _ in range(5):
        s.next_batch()
    t0 = time.perf_counter()
    for _ in range(n_batches):
        s.next_batch()
    ms = (time.perf_counter() - t0) / n_batches * 1e3
    out.put((build_s, (_status_kib("VmHWM") - rss0) / 1024, ms))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="*", type=int, default=[100_000, 500_000], help="questions (each in 9 languages)")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--batches", type=int, default=200, help="timed batches per strategy")
    args = ap.parse_args()
    ctx = mp.get_context("fork")
    for n in args.n:
        langs_of, groups = synthetic(n)
        print(f"\n{n:,} questions x {len(LANGS)} languages = {n * len(LANGS):,} monolingual and "
              f"{n * len(LANGS) * (len(LANGS) - 1):,} cross-lingual pairs; batch {args.batch_size}")
        print(f"{'strategy':<10} {'xy_sampling':<15} {'build s':>8} {'peak +MiB':>10} {'ms/batch':>9}")
        for strategy, xy in CASES:
            q = ctx.Queue()
            p = ctx.Process(target=_run_case, args=(langs_of, groups, strategy, xy, args.batch_size, args.batches, q))
            p.start()
            build_s, mib, ms = q.get()
            p.join()
            shown = xy if strategy in ("xy", "hybrid") else "-"
            print(f"{strategy:<10} {shown:<15} {build_s:8.2f} {mib:10.0f} {ms:9.2f}", flush=True)


if __name__ == "__main__":
    main()
