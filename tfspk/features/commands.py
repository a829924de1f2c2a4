"""The feature commands: table-level drivers behind the feature tools (one utterance in memory at a time).

Each function is what a Kaldi binary does over its tables: ``compute-mfcc-feats`` /
``compute-fbank-feats`` (:func:`compute_features_table`), ``compute-vad``,
``apply-cmvn-sliding``, ``select-voiced-frames``, ``copy-feats``, ``feat-to-len`` and
``feat-to-dim``. Kaldi's per-utterance conventions are kept: an utterance that cannot be
processed for a reason that is normal in a corpus (too short for one frame, no voiced frame)
is a warning and is left out; malformed input (unreadable audio, wrong sample rate, frame
counts that disagree, missing keys) is an error naming the utterance. A tool fails if no
utterance at all was written.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.features.cmvn import SlidingCmnOptions, apply_cmvn_sliding
from tfspk.features.mfcc import FeatureExtractor
from tfspk.features.vad import VadOptions, compute_vad, select_voiced_frames
from tfspk.io import ark, audio, lookup
from tfspk.io.scalar_table import ScalarTableWriter

# Kaldi copy-feats --compression-method codes -> tfspk.io compression methods
COMPRESSION_METHODS = {1: "auto", 2: "speech-feature", 3: "2byte-auto", 5: "1byte-auto"}


@dataclass
class Counts:
    """What a driver did, for the final LOG line and the exit status."""
    done: int = 0
    skipped: list = field(default_factory=list)

    def skip(self, key: str, reason: str) -> None:
        cli.warn(f"{reason}; utterance '{key}' is left out")
        self.skipped.append(key)

    def require_some(self, what: str) -> None:
        if self.done == 0:
            detail = f" ({len(self.skipped)} left out with warnings)" if self.skipped else " (empty input)"
            raise ToolError(f"no utterance was {what}{detail}")


def _optional_writer(wspec: str | None, kind: type):
    return ScalarTableWriter(wspec, kind) if wspec else contextlib.nullcontext(None)


def _write(writer, frames_writer, utt: str, feats: np.ndarray, counts: Counts) -> None:
    """One matrix to the archive, its frame count to ``--write-num-frames`` (if given); counted as done."""
    writer.write(utt, feats)
    if frames_writer is not None:
        frames_writer.write(utt, feats.shape[0])
    counts.done += 1


# ----------------------------------------------------------------------------------------------
# audio input
def iter_audio(wav_rspec: str, segments: str | None = None,
               min_segment_length: float = 0.1) -> Iterator[tuple]:
    """``(utt, samples, rate)`` per utterance of ``scp[,p]:wav.scp`` (:func:`tfspk.io.audio.iter_utterance_audio`:
    with ``segments`` the wav.scp keys are recordings and a segment Kaldi's ``extract-segments`` would
    skip, not longer than ``min_segment_length`` s or outside its recording, is left out with a warning).

    With the ``p`` (permissive) rspecifier option an unreadable recording is yielded as
    ``(utt, ToolError, None)`` for the caller to skip; otherwise its error is raised.
    """
    spec = ark.parse_rspecifier(wav_rspec)
    if spec.kinds[0] != "scp":
        raise ToolError(f"wav rspecifier '{wav_rspec}': tfspk reads audio from 'scp:wav.scp' (paths or "
                        "'command |' values); for segmented data pass --segments=<segments-file>")
    items = audio.utterances(audio.read_wav_scp(spec.locations[0]), segments)
    return audio.iter_utterance_audio(items, min_segment_length, permissive="p" in spec.options)


# ----------------------------------------------------------------------------------------------
# drivers
def compute_features_table(extractor: FeatureExtractor, wav_rspec: str, feats_wspec: str, *,
                           segments: str | None = None, min_segment_length: float = 0.1,
                           subtract_mean: bool = False, min_duration: float = 0.0,
                           compress: bool = False, compression_method: int = 1,
                           num_frames_wspec: str | None = None, utt2dur_wspec: str | None = None,
                           verbose: int = 0, allow_downsample: bool = False, allow_upsample: bool = False) -> Counts:
    """``compute-{mfcc,fbank}-feats`` (+ ``copy-feats --compress --write-num-frames`` in the same
    process): features of every utterance of ``wav_rspec`` to ``feats_wspec``.

    Audio at another rate than ``--sample-frequency`` is an error, as in Kaldi, unless
    ``allow_downsample`` (a higher rate) or ``allow_upsample`` (a lower one) allows resampling it
    (:func:`tfspk.io.resample.conform_rate`, announced once in the log); durations are the audio's."""
    counts = Counts()
    audio_seconds = 0.0
    method = compression_method_name(compression_method)
    with ark.ArchiveWriter(feats_wspec, compress=compress, compression_method=method) as writer, \
            _optional_writer(num_frames_wspec, int) as frames_writer, \
            _optional_writer(utt2dur_wspec, float) as dur_writer:
        for utt, samples, rate in iter_audio(wav_rspec, segments, min_segment_length):
            if rate is None:
                counts.skip(utt, f"cannot read audio ({samples})")
                continue
            duration = len(samples) / rate
            if duration < min_duration:
                counts.skip(utt, f"audio of '{utt}' is {duration:.3f} s, shorter than --min-duration={min_duration:g}")
                continue
            samples, rate = conform_to(extractor, samples, rate, utt, allow_downsample, allow_upsample)
            feats = extractor(samples, rate, utt)
            if feats.shape[0] == 0:
                counts.skip(utt, f"audio of '{utt}' has {len(samples)} samples ({duration:.3f} s), too short "
                                 f"for one frame")
                continue
            if subtract_mean:
                feats = feats - feats.mean(axis=0, dtype=np.float64).astype(np.float32)
            writer.write(utt, feats)
            if frames_writer is not None:
                frames_writer.write(utt, feats.shape[0])
            if dur_writer is not None:
                dur_writer.write(utt, duration)
            counts.done += 1
            audio_seconds += duration
            if verbose >= 2:
                cli.log(f"processed features for key {utt}")
        counts.require_some("processed")
    cli.log(f"Done {counts.done} out of {counts.done + len(counts.skipped)} utterances "
            f"({audio_seconds:.1f} s of audio)")
    return counts


def conform_to(extractor: FeatureExtractor, samples, rate, utt: str, allow_downsample: bool,
               allow_upsample: bool):
    """``(samples, rate)`` at the extractor's rate when Kaldi's ``--allow-downsample`` /
    ``--allow-upsample`` allow the conversion; otherwise unchanged (the extractor names the mismatch)."""
    target = extractor.rate
    if float(rate) == float(target) or not (allow_downsample if rate > target else allow_upsample):
        return samples, rate
    from tfspk.io.resample import conform_rate
    return conform_rate(samples, rate, target, where=f"utterance '{utt}'", log=cli.log), target


def compression_method_name(code: int) -> str:
    if code not in COMPRESSION_METHODS:
        raise ToolError(f"--compression-method={code} is not supported (tfspk writes 1 = automatic, "
                        "2 = speech-feature, 3 = two-byte automatic, 5 = one-byte automatic)")
    return COMPRESSION_METHODS[code]


def compute_vad_table(feats_rspec: str, vad_wspec: str, opts: VadOptions,
                      omit_unvoiced_utts: bool = False) -> Counts:
    """Kaldi ``compute-vad``: one 0/1 float vector per utterance (column 0 = log energy)."""
    opts.validate()
    counts = Counts()
    voiced_frames = total_frames = unvoiced_utts = 0
    with ark.ArchiveWriter(vad_wspec) as writer:
        for utt, feats in ark.read_rspecifier(feats_rspec):
            if feats.ndim != 2:
                raise ToolError(f"{feats_rspec}: key '{utt}' is not a matrix (shape {feats.shape})")
            if feats.shape[0] == 0:
                counts.skip(utt, f"empty feature matrix for utterance '{utt}'")
                continue
            vad = compute_vad(feats, opts.vad_energy_threshold, opts.vad_energy_mean_scale,
                              opts.vad_proportion_threshold, opts.vad_frames_context)
            num_voiced = int(vad.sum())
            if num_voiced == 0:
                unvoiced_utts += 1
                if omit_unvoiced_utts:
                    counts.skip(utt, f"no voiced frames in utterance '{utt}' (--omit-unvoiced-utts)")
                    continue
                cli.warn(f"no voiced frames in utterance '{utt}'")
            writer.write(utt, vad)
            counts.done += 1
            voiced_frames += num_voiced
            total_frames += len(vad)
        counts.require_some("processed")
    cli.log(f"Applied energy based voice activity detection; processed {counts.done} utterances "
            f"successfully; {len(counts.skipped)} left out, {unvoiced_utts} were completely unvoiced.")
    cli.log(f"Proportion of voiced frames was {voiced_frames / max(total_frames, 1):.4f} over {total_frames} frames.")
    return counts


def cmvn_sliding_table(feats_rspec: str, feats_wspec: str, opts: SlidingCmnOptions) -> Counts:
    """Kaldi ``apply-cmvn-sliding`` over a table."""
    opts.validate()
    counts = Counts()
    with ark.ArchiveWriter(feats_wspec) as writer:
        for utt, feats in ark.read_rspecifier(feats_rspec):
            if feats.ndim != 2:
                raise ToolError(f"{feats_rspec}: key '{utt}' is not a matrix (shape {feats.shape})")
            writer.write(utt, apply_cmvn_sliding(feats, opts.cmn_window, opts.center, opts.norm_vars,
                                                 opts.min_cmn_window))
            counts.done += 1
        counts.require_some("processed")
    cli.log(f"Applied sliding-window cepstral mean{' and variance' if opts.norm_vars else ''} "
            f"normalization to {counts.done} utterances")
    return counts


def select_voiced_table(feats_rspec: str, vad_rspec: str, feats_wspec: str, *,
                        compress: bool = False, compression_method: int = 1,
                        num_frames_wspec: str | None = None) -> Counts:
    """Kaldi ``select-voiced-frames`` (+ optional compression and num-frames output, as
    ``copy-feats`` would add). A missing VAD entry or a frame-count mismatch is an error;
    an utterance without voiced frames is left out with a warning, as in Kaldi."""
    vads = lookup.VectorLookup(vad_rspec)
    counts = Counts()
    method = compression_method_name(compression_method)
    with ark.ArchiveWriter(feats_wspec, compress=compress, compression_method=method) as writer, \
            _optional_writer(num_frames_wspec, int) as frames_writer:
        for utt, feats in ark.read_rspecifier(feats_rspec):
            if feats.ndim != 2 or feats.shape[0] == 0:
                counts.skip(utt, f"empty feature matrix for utterance '{utt}'")
                continue
            vad = vads.get(utt)
            if vad is None:
                raise ToolError(f"no VAD entry for utterance '{utt}' in '{vad_rspec}' "
                                "(run compute-vad on the same features, or utils/fix_data_dir.sh)")
            if vad.ndim != 1:
                raise ToolError(f"{vad_rspec}: VAD of '{utt}' is not a vector (shape {vad.shape})")
            if not np.all((vad == 0.0) | (vad == 1.0)):
                raise ToolError(f"{vad_rspec}: VAD of '{utt}' has values other than 0 and 1")
            voiced = select_voiced_frames(feats, vad, utt)
            if voiced.shape[0] == 0:
                counts.skip(utt, f"no features were judged as voiced for utterance '{utt}'")
                continue
            _write(writer, frames_writer, utt, voiced, counts)
        counts.require_some("written")
    cli.log(f"Done selecting voiced frames; processed {counts.done} utterances, {len(counts.skipped)} left out")
    return counts


def copy_feats_table(feats_rspec: str, feats_wspec: str, *, compress: bool = False,
                     compression_method: int = 1, num_frames_wspec: str | None = None) -> Counts:
    """Kaldi ``copy-feats`` (matrices as float32; ``--compress`` writes Kaldi compressed matrices).

    An input without any matrix is a ToolError (Kaldi exits 1) and no output file appears."""
    counts = Counts()
    method = compression_method_name(compression_method)
    with ark.ArchiveWriter(feats_wspec, compress=compress, compression_method=method) as writer, \
            _optional_writer(num_frames_wspec, int) as frames_writer:
        for utt, feats in ark.read_rspecifier(feats_rspec):
            if feats.ndim != 2:
                raise ToolError(f"{feats_rspec}: key '{utt}' is not a matrix (shape {feats.shape})")
            _write(writer, frames_writer, utt, feats.astype(np.float32, copy=False), counts)
        # Kaldi copy-feats returns 1 when nothing was copied; unlike Kaldi, leave no empty
        # output that looks complete (the writers discard their files on this error)
        counts.require_some("copied")
    cli.log(f"Copied {counts.done} feature matrices.")
    return counts


def is_rspecifier(text: str) -> bool:
    """Kaldi ``ClassifyRspecifier != kNoRspecifier``: ``ark...:`` or ``scp...:``."""
    head = text.split(":", 1)[0]
    return ":" in text and bool(head) and head.split(",")[0] in ("ark", "scp") and \
        all(w in ("ark", "scp") or w.isalpha() for w in head.split(","))


def feat_to_len(source: str, wspec: str | None) -> None:
    """Kaldi ``feat-to-len``: frames per utterance to ``wspec``, or of one matrix file to stdout."""
    if wspec is None:
        if is_rspecifier(source):
            raise ToolError(f"with one argument feat-to-len reads one matrix file, got the rspecifier "
                            f"'{source}'; to list every utterance give an output, e.g. ark,t:-")
        print(ark.read_object(source).shape[0])
        return
    count = 0
    with ScalarTableWriter(wspec, int) as writer:
        for utt, feats in ark.read_rspecifier(source):
            writer.write(utt, feats.shape[0])
            count += 1
    if count == 0:
        raise ToolError(f"no feature matrices in '{source}'")


def feat_to_dim(source: str, wspec: str) -> None:
    """Kaldi ``feat-to-dim``: with output ``-`` the dimension of the first matrix, else per utterance."""
    if not is_rspecifier(source):
        if wspec != "-":
            raise ToolError("feat-to-dim on a single matrix file writes to '-' only")
        print(_columns(ark.read_object(source), source))
        return
    if wspec == "-":
        for utt, feats in ark.read_rspecifier(source):
            print(_columns(feats, utt))
            return
        raise ToolError(f"could not read any features from '{source}' (empty archive?)")
    count = 0
    with ScalarTableWriter(wspec, int) as writer:
        for utt, feats in ark.read_rspecifier(source):
            writer.write(utt, _columns(feats, utt))
            count += 1
    if count == 0:
        raise ToolError(f"no feature matrices in '{source}'")


def _columns(feats: np.ndarray, name: str) -> int:
    if feats.ndim != 2:
        raise ToolError(f"'{name}' is not a matrix (shape {feats.shape})")
    return feats.shape[1]

