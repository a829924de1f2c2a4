"""The back-end tools as library functions: one function per Kaldi binary, file names in, files out.

The ``tfspk-*`` entry points in :mod:`tfspk.bin` only parse options and call these. Messages follow
the Kaldi binary they replace (``LOG``/``WARNING`` lines through :mod:`tfspk.cli`); bad input raises
:class:`ToolError`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from tfspk import cli
from tfspk.backend import lda, plda, scoring, tables, vectors
from tfspk.io import scalar_table
from tfspk.io import scores as score_files
from tfspk.io import table
from tfspk.io import objects as kaldi_objects
from tfspk.backend.plda import Plda
from tfspk.errors import ToolError


# ---------------------------------------------------------------------- means, transforms, length
def ivector_mean(ivector_rspecifier: str, mean_wxfilename: str, binary: bool = False) -> None:
    """Kaldi ``ivector-mean <rspec> <mean>``: the mean of all vectors as a double vector."""
    keys, matrix = tables.load_vectors(ivector_rspecifier)
    kaldi_objects.write_vector(mean_wxfilename, vectors.global_mean(matrix), binary=binary, double=True)
    cli.log(f"Wrote mean of {len(keys)} vectors to {mean_wxfilename}")


def ivector_speaker_mean(spk2utt_rspecifier: str, ivector_rspecifier: str, ivector_wspecifier: str,
                         num_utts_wspecifier: Optional[str] = None) -> None:
    """Kaldi ``ivector-mean <spk2utt> <rspec> <wspec> [<num-utts>]``: per-speaker means (and counts)."""
    spk2utt = tables.read_spk2utt(spk2utt_rspecifier)
    keys, matrix = tables.load_vectors(ivector_rspecifier)
    by_key = dict(zip(keys, matrix))
    speakers, means, counts, missing = vectors.speaker_means(spk2utt, by_key)
    for utt in missing:
        cli.warn(f"No iVector present in input for utterance {utt}")
    for speaker in sorted(set(spk2utt) - set(speakers)):
        cli.warn(f"Not producing output for speaker {speaker} since no utterances had iVectors")
    if not speakers:
        raise ToolError(f"no speaker of {spk2utt_rspecifier} has any vector in {ivector_rspecifier}")
    tables.write_vectors(ivector_wspecifier, speakers, means)
    if num_utts_wspecifier:
        scalar_table.write_int32_table(num_utts_wspecifier, list(zip(speakers, counts.tolist())))
    cli.log(f"Computed mean of {len(speakers)} speakers ({len(spk2utt) - len(speakers)} with no "
            f"utterances), consisting of {int(counts.sum())} utterances ({len(missing)} absent from input).")


def subtract_global_mean(mean_rxfilename: Optional[str], ivector_rspecifier: str, ivector_wspecifier: str,
                         subtract_mean: bool = True) -> None:
    """Kaldi ``ivector-subtract-global-mean [<mean>] <rspec> <wspec>``."""
    keys, matrix = tables.load_vectors(ivector_rspecifier)
    if mean_rxfilename:
        mean = kaldi_objects.read_vector(mean_rxfilename)
        if mean.shape[0] != matrix.shape[1]:
            raise ToolError(f"dimension mismatch: mean {mean_rxfilename} has dimension {mean.shape[0]}, "
                            f"vectors in {ivector_rspecifier} have dimension {matrix.shape[1]}")
    else:
        mean = vectors.global_mean(matrix)
        cli.log(f"Read {len(keys)} iVectors.")
        cli.log(f"Norm of iVector mean was {float(np.linalg.norm(mean)):.6g}")
        if not subtract_mean:
            mean = np.zeros_like(mean)
    tables.write_vectors(ivector_wspecifier, keys, matrix - mean)
    cli.log(f"Wrote {len(keys)} mean-subtracted iVectors")


def transform_vec(transform_rxfilename: str, vec_rspecifier: str, vec_wspecifier: str) -> None:
    """Kaldi ``transform-vec``: a linear (R x D) or affine (R x (D+1)) matrix applied to every vector."""
    transform = kaldi_objects.read_matrix(transform_rxfilename)
    keys, matrix = tables.load_vectors(vec_rspecifier)
    tables.write_vectors(vec_wspecifier, keys, vectors.apply_transform(transform, matrix))
    cli.log(f"Applied transform to {len(keys)} vectors.")


def normalize_length(ivector_rspecifier: str, ivector_wspecifier: str, normalize: bool = True,
                     scaleup: bool = True) -> None:
    """Kaldi ``ivector-normalize-length``."""
    keys, matrix = tables.load_vectors(ivector_rspecifier)
    normalized, ratios = vectors.normalize_length(matrix, scaleup=scaleup, normalize=normalize)
    for key in (k for k, r in zip(keys, ratios) if r == 0.0):
        cli.warn(f"Zero iVector for key {key}")
    tables.write_vectors(ivector_wspecifier, keys, normalized)
    cli.log(f"Processed {len(keys)} iVectors.")
    cli.log(f"Average ratio of iVector to expected length was {ratios.mean():.6g}, "
            f"standard deviation was {ratios.std():.6g}")


# ---------------------------------------------------------------------- LDA and PLDA training
def compute_lda(ivector_rspecifier: str, utt2spk_rspecifier: str, lda_wxfilename: str, dim: int = 100,
                total_covariance_factor: float = 0.0, covariance_floor: float = 1e-6, binary: bool = True) -> None:
    """Kaldi ``ivector-compute-lda``: utterances without a speaker are warned about and skipped."""
    utt2spk = tables.read_utt2spk(utt2spk_rspecifier)
    keys, matrix = tables.load_vectors(ivector_rspecifier)
    kept = [i for i, key in enumerate(keys) if key in utt2spk]
    for key in (k for k in keys if k not in utt2spk):
        cli.warn(f"utt2spk has no entry for utterance {key}, skipping it.")
    cli.log(f"Read {len(kept)} utterances, {len(keys) - len(kept)} with errors.")
    if not kept:
        raise ToolError(f"Did not read any utterances: no key of {ivector_rspecifier} is in {utt2spk_rspecifier}")
    result = lda.compute_lda(matrix[kept], [utt2spk[keys[i]] for i in kept], dim,
                             total_covariance_factor, covariance_floor, warn=cli.warn)
    cli.log(f"Stats have {result.num_speakers} speakers, {result.num_utterances} utterances.")
    if result.num_floored:
        cli.warn(f"Floored {result.num_floored} eigenvalues of covariance")
    kaldi_objects.write_matrix(lda_wxfilename, result.transform, binary=binary)
    cli.log(f"Wrote LDA transform to {lda_wxfilename}")


def compute_plda(spk2utt_rspecifier: str, ivector_rspecifier: str, plda_wxfilename: str,
                 num_em_iters: int = 10, binary: bool = True) -> None:
    """Kaldi ``ivector-compute-plda``."""
    spk2utt = tables.read_spk2utt(spk2utt_rspecifier)
    keys, matrix = tables.load_vectors(ivector_rspecifier)
    row_of = {key: i for i, key in enumerate(keys)}
    groups, num_missing, num_spk_err = [], 0, 0
    for speaker, utts in spk2utt.items():
        rows = [row_of[u] for u in utts if u in row_of]
        for utt in (u for u in utts if u not in row_of):
            cli.warn(f"No iVector present in input for utterance {utt}")
            num_missing += 1
        if rows:
            groups.append(matrix[np.array(rows)])
        else:
            cli.warn(f"Not producing output for speaker {speaker} since no utterances had iVectors")
            num_spk_err += 1
    cli.log(f"Accumulated stats from {len(groups)} speakers ({num_spk_err} with no utterances), consisting "
            f"of {sum(len(g) for g in groups)} utterances ({num_missing} absent from input).")
    model = plda.estimate_plda(plda.PldaStats.from_groups(groups), num_em_iters, log=cli.log, warn=cli.warn)
    cli.log("Diagonal of between-class variance in normalized space is "
            + np.array2string(model.psi, precision=4, max_line_width=10 ** 6))
    model.write(plda_wxfilename, binary=binary)


def copy_plda(plda_rxfilename: str, plda_wxfilename: str, smoothing: float = 0.0, binary: bool = True) -> None:
    """Kaldi ``ivector-copy-plda``, optionally smoothing the within-class covariance."""
    model = Plda.read(plda_rxfilename)
    if smoothing != 0.0:
        cli.log(f"Smoothing within-class covariance by {smoothing:g}")
        model = model.smoothed(smoothing)
    model.write(plda_wxfilename, binary=binary)


# ---------------------------------------------------------------------- scoring
def _vectors_for_plda(model: Plda, rspecifier: str, num_utts: Optional[dict] = None):
    """A vector table checked against the model: ``(keys, vectors, utterance counts)``.

    With ``num_utts`` (Kaldi ``--num-utts``), a key without a count is warned about and dropped.
    """
    keys, matrix = tables.load_vectors(rspecifier)
    counts = np.ones(len(keys), dtype=np.int64)
    if num_utts is not None:
        present = [i for i, key in enumerate(keys) if key in num_utts]
        for key in (k for k in keys if k not in num_utts):
            cli.warn(f"Number of utterances not given for speaker {key}")
        keys = [keys[i] for i in present]
        matrix = matrix[present]
        counts = np.array([num_utts[k] for k in keys], dtype=np.int64)
        if (counts < 1).any():
            raise ToolError(f"number of utterances for '{keys[int(np.argmax(counts < 1))]}' must be at least 1")
    if matrix.shape[1] != model.dim:
        raise ToolError(f"dimension mismatch: vectors in {rspecifier} have dimension {matrix.shape[1]}, "
                        f"the PLDA model has dimension {model.dim}")
    return keys, matrix, counts


def plda_space_vectors(model: Plda, rspecifier: str, num_utts_rspecifier: str = "",
                       normalize_length: bool = True, simple_length_norm: bool = False, what: str = "iVectors"):
    """Read and ``TransformIvector`` a table: ``(keys, transformed, counts)`` (Kaldi PldaConfig options)."""
    num_utts = scalar_table.read_int32_table(num_utts_rspecifier) if num_utts_rspecifier else None
    keys, matrix, counts = _vectors_for_plda(model, rspecifier, num_utts)
    if not keys:
        raise ToolError(f"No {what} present in {rspecifier}.")
    transformed, factors = model.transform_vectors(matrix, counts, normalize_length, simple_length_norm)
    cli.log(f"Read {len(keys)} {what}; average renormalization scale {factors.mean():.6g}")
    return keys, transformed, counts


def _resolve(trials, enroll_keys, test_keys, enroll_name, test_name):
    kept, enroll_index, test_index, num_missing = scoring.resolve_trials(
        trials, enroll_keys, test_keys, cli.warn, enroll_name, test_name)
    if not len(kept):
        raise ToolError(f"none of the {len(trials)} trials could be scored: keys missing from the vectors "
                        f"(Processed 0 trials, {num_missing} had errors)")
    return kept, enroll_index, test_index, num_missing


def _second_table(rspecifier1: str, rspecifier2: str, first: tuple, load, num_utts_rspecifier: str = "") -> tuple:
    """The second table of a scoring: ``first`` again when it is the first one transformed alike (same
    rspecifier, no per-speaker counts on the first side), else ``load(rspecifier2)``. A recipe's
    "ark:<pipeline> |" on both sides then runs once, not twice; the log says so."""
    if rspecifier1 == rspecifier2 and not num_utts_rspecifier:
        cli.log(f"the second table is the first one ({rspecifier1}): read once")
        return first
    return load(rspecifier2)


def _read_trials(trials_rxfilename: str):
    trials = tables.read_trials(trials_rxfilename)
    if not trials:
        raise ToolError(f"{trials_rxfilename}: no trials")
    return trials


def plda_scoring(plda_rxfilename: str, train_rspecifier: str, test_rspecifier: str, trials_rxfilename: str,
                 scores_wxfilename: str, normalize_length: bool = True, simple_length_norm: bool = False,
                 num_utts_rspecifier: str = "") -> None:
    """Kaldi ``ivector-plda-scoring``: LLR per trial, trials with a missing key warned about and skipped."""
    model = Plda.read(plda_rxfilename)
    config = dict(normalize_length=normalize_length, simple_length_norm=simple_length_norm)
    enroll_keys, enroll, counts = plda_space_vectors(model, train_rspecifier, num_utts_rspecifier,
                                                     what="training iVectors", **config)
    test_keys, test = _second_table(train_rspecifier, test_rspecifier, (enroll_keys, enroll),
                                    lambda r: plda_space_vectors(model, r, what="test iVectors", **config)[:2],
                                    num_utts_rspecifier)
    trials = _read_trials(trials_rxfilename)
    kept, enroll_index, test_index, num_missing = _resolve(trials, enroll_keys, test_keys,
                                                           "training iVectors", "test iVectors")
    scores = model.log_likelihood_ratios(enroll, counts, test, enroll_index, test_index)
    table.write_text(scores_wxfilename, score_files.format_scores([trials[k] for k in kept], scores))
    cli.log(f"Mean score was {scores.mean():.6g}, standard deviation was {scores.std():.6g}")
    cli.log(f"Processed {len(kept)} trials, {num_missing} had errors.")


SIMILARITIES = {"dot-product": scoring.pair_dots, "cosine": scoring.cosine_scores}


def similarity_scoring(trials_rxfilename: str, rspecifier1: str, rspecifier2: str, scores_wxfilename: str,
                       similarity: str = "dot-product") -> None:
    """Kaldi ``ivector-compute-dot-products`` (``similarity="dot-product"``) or cosine scoring."""
    score_function = SIMILARITIES[similarity]
    trials = _read_trials(trials_rxfilename)
    keys1, vectors1 = tables.load_vectors(rspecifier1)
    keys2, vectors2 = _second_table(rspecifier1, rspecifier2, (keys1, vectors1), tables.load_vectors)
    scoring.check_same_dim(vectors1, vectors2, rspecifier1, rspecifier2)
    kept, index1, index2, num_missing = _resolve(trials, keys1, keys2, "1st table of ivectors",
                                                 "2nd table of ivectors")
    scores = score_function(vectors1, vectors2, index1, index2)
    table.write_text(scores_wxfilename, score_files.format_scores([trials[k] for k in kept], scores))
    cli.log(f"Mean {similarity} was {scores.mean():.6g}, standard deviation was {scores.std():.6g}")
    cli.log(f"Processed {len(kept)} trials {num_missing} had errors.")


def score_norm(enroll_rspecifier: str, test_rspecifier: str, cohort_rspecifier: str, scores_rxfilename: str,
               scores_wxfilename: str, top_n: int = 300, plda_rxfilename: str = "", num_utts_rspecifier: str = "",
               normalize_length: bool = True, simple_length_norm: bool = False) -> None:
    """AS-norm of a scores file (see :func:`tfspk.backend.scoring.adaptive_snorm`); cohort scores are
    cosine similarities, or PLDA LLRs when ``plda_rxfilename`` is given."""
    if top_n < 0:
        raise ToolError(f"--top-n={top_n} must be >= 0")
    pairs, raw = score_files.read_scores(scores_rxfilename)
    if plda_rxfilename:
        model = Plda.read(plda_rxfilename)
        config = dict(normalize_length=normalize_length, simple_length_norm=simple_length_norm)
        enroll_keys, enroll, counts = plda_space_vectors(model, enroll_rspecifier, num_utts_rspecifier,
                                                         what="enrolment vectors", **config)
        test_keys, test = _second_table(enroll_rspecifier, test_rspecifier, (enroll_keys, enroll),
                                        lambda r: plda_space_vectors(model, r, what="test vectors", **config)[:2],
                                        num_utts_rspecifier)
        _, cohort, _ = plda_space_vectors(model, cohort_rspecifier, what="cohort vectors", **config)

        def cohort_stats(rows, row_counts):
            return scoring.cohort_statistics(
                lambda a, b: model.score_matrix(rows[a:b], row_counts[a:b], cohort), len(rows), top_n)
    else:
        enroll_keys, enroll = tables.load_vectors(enroll_rspecifier)
        test_keys, test = _second_table(enroll_rspecifier, test_rspecifier, (enroll_keys, enroll),
                                        tables.load_vectors)
        _, cohort = tables.load_vectors(cohort_rspecifier)
        scoring.check_same_dim(enroll, test, enroll_rspecifier, test_rspecifier)
        scoring.check_same_dim(enroll, cohort, enroll_rspecifier, cohort_rspecifier)
        counts = np.ones(len(enroll_keys), dtype=np.int64)
        unit_cohort = vectors.unit_length(cohort)

        def cohort_stats(rows, _row_counts):
            unit_rows = vectors.unit_length(rows)
            return scoring.cohort_statistics(lambda a, b: unit_rows[a:b] @ unit_cohort.T, len(rows), top_n)
    kept, enroll_index, test_index, num_missing = _resolve(pairs, enroll_keys, test_keys,
                                                           "enrolment vectors", "test vectors")
    # Cohort statistics only for the vectors the trials use.
    used_enroll, enroll_slot = np.unique(enroll_index, return_inverse=True)
    used_test, test_slot = np.unique(test_index, return_inverse=True)
    enroll_stats = cohort_stats(enroll[used_enroll], counts[used_enroll])
    test_stats = cohort_stats(test[used_test], np.ones(len(used_test), dtype=np.int64))
    normalized = scoring.adaptive_snorm(raw[kept], enroll_stats, test_stats, enroll_slot, test_slot)
    table.write_text(scores_wxfilename, score_files.format_scores([pairs[k] for k in kept], normalized))
    cli.log(f"Normalised {len(kept)} scores with a cohort of {len(cohort)} vectors "
            f"(top {top_n if 0 < top_n < len(cohort) else len(cohort)}), {num_missing} trials skipped.")
