"""Extraction from a trained experiment dir into an archive (what ``tfspk-extract`` does)."""
from __future__ import annotations

import os
import time

import numpy as np

from tfspk import cli
from tfspk.data import OrderedPrefetcher
from tfspk.errors import ToolError
from tfspk.extract.extractor import XvectorExtractor, prepare_features
from tfspk.io.ark import ArchiveWriter, parse_rspecifier, read_rspecifier
from tfspk.io.lookup import VectorLookup, location_in


def load_extractor(exp_dir: str, allow_unfinished: bool = False, **options) -> XvectorExtractor:
    """An extractor for the trained network of ``exp_dir`` (config.yaml + final/model.weights.h5); the
    training must have finished (``final/DONE``) unless ``allow_unfinished`` (then a warning)."""
    from tfspk.nnet import load_trained
    model, config, network = load_trained(exp_dir, allow_unfinished=allow_unfinished, warn=cli.warn)
    source = f"the network of {os.path.join(exp_dir, 'config.yaml')}"
    return XvectorExtractor(model, int(config["feat_dim"]), arch=network, source=source, **options)


def recorded_cmn(exp_dir: str, apply_cmn: bool | None = None, cmn_window: int | None = None) -> tuple[bool, int]:
    """``(apply, window)`` of extraction's sliding CMN: ``apply_cmn`` and ``cmn_window`` where given, else the
    front end's recorded in ``exp_dir`` (:func:`tfspk.features.frontend.read_front_end`), else the Kaldi
    recipes' ``(True, 300)``."""
    from tfspk.features.frontend import front_end_path, read_front_end
    recorded = read_front_end(exp_dir).inference_cmn() if os.path.isfile(front_end_path(exp_dir)) else (True, 300)
    return (recorded[0] if apply_cmn is None else apply_cmn, recorded[1] if cmn_window is None else cmn_window)


def extract_to_archive(extractor: XvectorExtractor, feats_rspec: str, vad_rspec: str | None, xvector_wspec: str,
                       apply_cmn: bool = True, cmn_window: int = 300, center: bool = True,
                       num_threads: int = 2) -> int:
    """Prepare features (sliding CMN + voiced frames), extract, write one float vector per utterance.

    Feature preparation runs in ``num_threads`` threads ahead of the network. Returns the number of
    vectors written; ToolError (and no output) if none could be extracted.
    """
    vads = None if vad_rspec is None else VectorLookup(vad_rspec)
    skipped_no_vad = []

    def utterances():
        for utt, feats in read_rspecifier(feats_rspec):
            vad = None if vads is None else vads.get(utt)
            if vads is not None and vad is None:
                cli.warn(f"no VAD for utterance {utt} in {vad_rspec}; skipping it")
                skipped_no_vad.append(utt)
                continue
            yield utt, feats, vad

    def prepare(item):
        utt, feats, vad = item
        if not np.isfinite(feats).all():
            raise ToolError(f"utterance '{utt}' of {location_in(feats_rspec, utt)} has non-finite values (NaN or "
                            f"Inf) in {int((~np.isfinite(feats).all(axis=1)).sum())} frame(s); fix or remove it")
        return utt, prepare_features(feats, vad, utt, cmn_window=cmn_window, center=center, apply_cmn=apply_cmn)

    start = time.time()
    progress = cli.Progress(_count_utterances(feats_rspec), "utterances", every=1000, interval=30.0)
    with ArchiveWriter(xvector_wspec) as writer, OrderedPrefetcher(utterances(), prepare, num_threads,
                                                                   prefetch=4 * num_threads) as prepared:
        for utt, vector in extractor.extract(prepared):
            writer.write(utt, vector)
            done = extractor.num_done + extractor.num_skipped + len(skipped_no_vad)   # skipped ones count as done
            if progress.due(done):
                cli.log(f"progress: {progress.line(done)}")
        if extractor.num_done == 0:
            raise ToolError(f"no embedding extracted from {feats_rspec} ({extractor.num_skipped} utterances without "
                            f"voiced frames, {len(skipped_no_vad)} without VAD)")
    cli.log(f"Done {extractor.num_done} utterances, failed for {extractor.num_skipped + len(skipped_no_vad)} "
            f"({time.time() - start:.1f} s)")
    return extractor.num_done


def _count_utterances(feats_rspec: str) -> int | None:
    """Lines of an scp (one per utterance; the total of the progress lines), None for an archive or pipe."""
    spec = parse_rspecifier(feats_rspec)
    location = spec.locations[0]
    if spec.kinds != ["scp"] or not location or location.endswith("|") or location == "-":
        return None
    try:
        with open(location, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None   # the reader names the file in its own error
