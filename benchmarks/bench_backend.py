#!/usr/bin/env python3
"""Speed of the back-end: PLDA scoring throughput, EER + minDCF on 10 million scores, and the
extraction real-time factor (from benchmarks/bench_extract.py when it is there).

Wall-clock and CPU time are both printed: on a shared machine the wall clock mostly measures the
other processes. Targets (2 CPU cores, idle): PLDA scoring >= 1,000,000 trials/s on 200-dim vectors; EER + three
minDCFs on 10 million scores < 5 s.

    .venv/bin/python benchmarks/bench_backend.py [--trials 1000000] [--scores 10000000] [--tool]

PLDA throughput counts the library work of ivector-plda-scoring: transforming and
length-normalising every enrolment and test vector once, then the LLR of every trial. Two trial
layouts of random pairs are timed (see LAYOUTS): dense, medium and sparse lists. ``--tool`` also times
the whole command (reading ark files and the trials text, writing the scores text).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tfspk.backend.plda import Plda  # noqa: E402
from tfspk.metrics import detection  # noqa: E402

DIM = 200
# (name, enrolment vectors, test vectors): trials are random pairs, so the share of all pairs that
# are trials is 1/4 (dense), 1/25 (medium) and 1/400 (sparse, like VoxCeleb1-O's 1/590).
LAYOUTS = [("dense", 2000, 2000), ("medium", 5000, 5000), ("sparse", 20000, 20000)]


def random_plda(rng):
    transform = rng.standard_normal((DIM, DIM)) / np.sqrt(DIM) + np.eye(DIM)
    return Plda(rng.standard_normal(DIM) * 0.1, transform, np.sort(rng.uniform(0.1, 10, DIM))[::-1])


def time_plda(model, num_enroll, num_test, enroll_index, test_index, repeats=3):
    rng = np.random.default_rng(1)
    enroll = rng.standard_normal((num_enroll, DIM))
    test = rng.standard_normal((num_test, DIM))
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        e, _ = model.transform_vectors(enroll, 1)
        t, _ = model.transform_vectors(test, 1)
        scores = model.log_likelihood_ratios(e, 1, t, enroll_index, test_index)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    assert np.isfinite(scores).all()
    return len(enroll_index) / best_wall, len(enroll_index) / best_cpu


def bench_plda(num_trials):
    rng = np.random.default_rng(0)
    model = random_plda(rng)
    results = {}
    for name, num_enroll, num_test in LAYOUTS:
        results[name] = time_plda(model, num_enroll, num_test, rng.integers(0, num_enroll, num_trials),
                                  rng.integers(0, num_test, num_trials))
    return results


def bench_metrics(num_scores):
    rng = np.random.default_rng(2)
    num_targets = num_scores // 100
    scores = np.concatenate([rng.normal(3, 1, num_targets), rng.normal(0, 1, num_scores - num_targets)])
    labels = np.arange(num_scores) < num_targets
    perm = rng.permutation(num_scores)
    scores, labels = scores[perm], labels[perm]
    wall, cpu = time.perf_counter(), time.process_time()
    summary = detection.summarize(scores, labels)
    return time.perf_counter() - wall, time.process_time() - cpu, summary


def bench_tool(num_trials):
    """The whole tfspk-ivector-plda-scoring command on ark files and a trials text file."""
    from tfspk.io.ark import ArchiveWriter
    rng = np.random.default_rng(3)
    model = random_plda(rng)
    with tempfile.TemporaryDirectory() as tmp:
        model.write(f"{tmp}/plda")
        for name in ("enroll", "test"):
            with ArchiveWriter(f"ark:{tmp}/{name}.ark") as writer:
                for i in range(5000):
                    writer.write(f"{name}{i:05d}", rng.standard_normal(DIM).astype(np.float32))
        e, t = rng.integers(0, 5000, num_trials), rng.integers(0, 5000, num_trials)
        with open(f"{tmp}/trials", "w") as handle:
            handle.writelines(f"enroll{a:05d} test{b:05d}\n" for a, b in zip(e, t))
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "tfspk-ivector-plda-scoring"), f"{tmp}/plda",
                        f"ark:{tmp}/enroll.ark", f"ark:{tmp}/test.ark", f"{tmp}/trials", f"{tmp}/scores"],
                       check=True, stderr=subprocess.DEVNULL)
        return num_trials / (time.perf_counter() - start)


def extraction_rtf_text():
    try:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from bench_extract import extraction_rtf  # type: ignore
    except ImportError as err:
        return f"n/a (benchmarks/bench_extract.py with extraction_rtf() not available: {err})"
    try:
        value = extraction_rtf()
    except Exception as err:  # pylint: disable=broad-except  # report, don't hide, another part's failure
        return f"n/a (extraction_rtf() failed: {type(err).__name__}: {err})"
    if not isinstance(value, (int, float)) or value <= 0:
        return str(value)
    # bench_extract.extraction_rtf() returns seconds of audio per wall-clock second.
    return f"{value:.1f} s of audio per second, i.e. real-time factor {1 / value:.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--scores", type=int, default=10_000_000)
    parser.add_argument("--tool", action="store_true", help="also time the whole scoring command")
    parser.add_argument("--skip-extraction", action="store_true")
    args = parser.parse_args()
    print(f"CPU cores visible: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f} (wall-clock figures "
          "are only meaningful on an otherwise idle machine; CPU-time figures are less sensitive to other load)")

    for name, (rate, cpu_rate) in bench_plda(args.trials).items():
        print(f"PLDA scoring, {DIM}-dim, {args.trials} trials, {name} layout: {rate:,.0f} trials/s wall "
              f"(target >= 1,000,000: {'OK' if rate >= 1e6 else 'BELOW TARGET'}); {cpu_rate:,.0f} trials per "
              "CPU-second")
    if args.tool:
        print(f"tfspk-ivector-plda-scoring end to end (files in/out), {args.trials} trials: "
              f"{bench_tool(args.trials):,.0f} trials/s")

    seconds, cpu_seconds, summary = bench_metrics(args.scores)
    print(f"EER + minDCF(0.01) + minDCF(0.001) + minDCF08 on {args.scores:,} scores: {seconds:.2f} s wall "
          f"(target < 5 s: {'OK' if seconds < 5 else 'ABOVE TARGET'}), {cpu_seconds:.2f} CPU-seconds; "
          f"EER {100 * summary.eer:.3f}%")

    if not args.skip_extraction:
        print(f"Extraction real-time factor: {extraction_rtf_text()}")


if __name__ == "__main__":
    main()
