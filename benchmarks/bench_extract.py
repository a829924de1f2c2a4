"""Extraction speed of the default [Liu2019] TDNN on this CPU.

Real-time factor here = seconds of audio (raw frames, 100 per second, 80 % of them voiced) embedded
per second of wall time, so larger is faster. Measured end to end on raw features: sliding CMN + voiced-frame selection,
whole-utterance chunking (Kaldi's default --chunk-size -1) and the network (random weights: speed
does not depend on them).

    .venv/bin/python benchmarks/bench_extract.py [--seconds 8] [--utt-seconds 10]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FRAMES_PER_SECOND = 100


def extraction_rtf(budget_seconds: float = 8.0, utterance_seconds: float = 10.0, feat_dim: int = 30,
                   chunk_size: int = -1, seed: int = 0) -> float:
    """Seconds of audio per wall-clock second for the [Liu2019] TDNN (512/1500/512 widths)."""
    import numpy as np

    from tfspk.extract import XvectorExtractor, prepare_features
    from tfspk.nnet import get_network

    network = get_network("tdnn")
    extractor = XvectorExtractor(network.build(feat_dim), feat_dim, arch=network, chunk_size=chunk_size)
    rng = np.random.default_rng(seed)
    frames = int(utterance_seconds * FRAMES_PER_SECOND)

    def utterances():
        # Lengths vary as real utterances do; one trace serves all (the time axis is None).
        for index in iter(int, 1):
            num = frames + int(rng.integers(-50, 50))
            feats = rng.normal(size=(num, feat_dim)).astype(np.float32)
            vad = (rng.random(num) > 0.2).astype(np.float32)
            yield f"utt{index}", prepare_features(feats, vad, f"utt{index}"), num
            if index > 10_000:
                return

    stream = utterances()
    extractor.extract_one(*next(stream)[:2])  # trace the tf.function outside the timing
    start, audio = time.perf_counter(), 0.0
    while time.perf_counter() - start < budget_seconds:
        utt, feats, raw_frames = next(stream)
        extractor.extract_one(utt, feats)
        audio += raw_frames / FRAMES_PER_SECOND
    return audio / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time budget")
    parser.add_argument("--utt-seconds", type=float, default=10.0, help="utterance length (speech seconds)")
    parser.add_argument("--chunk-size", type=int, default=-1)
    args = parser.parse_args()
    rtf = extraction_rtf(args.seconds, args.utt_seconds, chunk_size=args.chunk_size)
    print(f"x-vector extraction ([Liu2019] TDNN, CPU, {args.utt_seconds:g} s utterances, chunk {args.chunk_size}): "
          f"{rtf:.1f} s of audio per second (real-time factor {1 / rtf:.4f})")


if __name__ == "__main__":
    main()
