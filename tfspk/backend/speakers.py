"""Enrolled speakers and identification against them.

A speaker model is the mean of the speaker's raw utterance embeddings and its number of utterances,
stored as Kaldi's ``steps/extract_xvectors.sh`` stores speaker means (``ivector-mean <spk2utt> <vectors>
<spk-vectors> <num-utts>``): ``spk_xvector.ark`` + ``spk_xvector.scp`` (float vectors) and
``num_utts.ark`` (text int32 table). Scoring a test embedding against every speaker uses the export's
back-end (:class:`~tfspk.backend.scorer.Scorer`: raw or centred cosine, or PLDA with the number of
enrolment utterances).

Identification ranks the speakers by score; the answer is the best speaker, or ``none`` (open set) when
its score is below the threshold: a score threshold when one is given, else with a calibration the
Bayes threshold on the LLR, ``llr >= log((1 - P) / P)`` at the target prior ``P`` [Brummer2006]; with
neither, the best speaker is always the answer (closed set).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tfspk.backend import tables
from tfspk.backend import vectors as vector_ops
from tfspk.errors import ToolError
from tfspk.io import scalar_table

SPEAKER_VECTORS = "spk_xvector"
NUM_UTTS = "num_utts.ark"
NONE = "none"


@dataclass
class SpeakerModels:
    speakers: list[str]
    means: np.ndarray    # [S, D] float64
    counts: np.ndarray   # [S] int64

    @classmethod
    def from_embeddings(cls, spk2utt: dict[str, list[str]], embeddings: dict[str, np.ndarray],
                        where: str = "the enrolment list") -> "SpeakerModels":
        """Per-speaker means (:func:`tfspk.backend.vectors.speaker_means`); a speaker with no embedding,
        an empty list or embeddings of different dimensions is a ToolError."""
        if not spk2utt:
            raise ToolError(f"{where}: no speakers to enroll")
        empty = [spk for spk, utts in spk2utt.items() if not utts]
        if empty:
            raise ToolError(f"{where}: speaker '{empty[0]}' has no utterances")
        dims = {np.asarray(v).shape for v in embeddings.values()}
        if len(dims) > 1:
            raise ToolError(f"{where}: embeddings of different shapes {sorted(dims)}")
        speakers, means, counts, missing = vector_ops.speaker_means(spk2utt, embeddings)
        if missing:
            raise ToolError(f"{where}: no embedding for utterance '{missing[0]}' ({len(missing)} missing)")
        keys = list(embeddings)
        vector_ops.check_vectors(keys, np.asarray([embeddings[k] for k in keys], dtype=np.float64), where)
        return cls(speakers, means, counts)

    def write(self, directory: str) -> None:
        """``spk_xvector.{ark,scp}`` and ``num_utts.ark`` in ``directory`` (each file atomic)."""
        os.makedirs(directory, exist_ok=True)
        base = os.path.join(directory, SPEAKER_VECTORS)
        tables.write_vectors(f"ark,scp:{base}.ark,{base}.scp", self.speakers, self.means)
        scalar_table.write_int32_table(f"ark,t:{os.path.join(directory, NUM_UTTS)}",
                                       list(zip(self.speakers, self.counts.tolist())))

    @classmethod
    def read(cls, directory: str) -> "SpeakerModels":
        scp = os.path.join(directory, SPEAKER_VECTORS + ".scp")
        counts_path = os.path.join(directory, NUM_UTTS)
        for path in (scp, counts_path):
            if not os.path.isfile(path):
                raise ToolError(f"{directory} holds no enrolled speakers: missing {path} (written by tfspk-enroll "
                                "or steps/extract_xvectors.sh)")
        speakers, means = tables.load_vectors(f"scp:{scp}")
        counts = scalar_table.read_int32_table(f"ark:{counts_path}")
        missing = [spk for spk in speakers if spk not in counts]
        if missing:
            raise ToolError(f"{counts_path} has no count for speaker '{missing[0]}'")
        return cls(speakers, means, np.array([counts[spk] for spk in speakers], dtype=np.int64))


@dataclass
class Identification:
    key: str
    decision: str                 # a speaker, or NONE
    ranked: list[tuple[str, float, float | None]]   # (speaker, score, llr or None), best first


def identify(scorer, models: SpeakerModels, keys: list[str], embeddings: np.ndarray, calibration=None,
             threshold: float | None = None, llr_threshold: float | None = None,
             top_n: int = 5) -> list[Identification]:
    """Rank the enrolled speakers for each test embedding (module docstring for the decision).

    ``calibration``: ``(a, b)`` of ``llr = a * score + b`` or None; ``threshold``: on the score;
    ``llr_threshold``: on the LLR (used when ``threshold`` is None and a calibration is given).
    """
    if top_n < 1:
        raise ToolError(f"--top-n={top_n} must be at least 1")
    embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    if embeddings.shape[1] != models.means.shape[1]:
        raise ToolError(f"test embeddings have dimension {embeddings.shape[1]} but the enrolled speakers "
                        f"{models.means.shape[1]}")
    scores = scorer.score_matrix(models.means, embeddings, models.counts).T   # [T, S]
    llrs = None if calibration is None else calibration[0] * scores + calibration[1]
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_n]
    results = []
    for row, key in enumerate(keys):
        best = order[row, 0]
        if threshold is not None:
            accepted = scores[row, best] >= threshold
        elif llrs is not None and llr_threshold is not None:
            accepted = llrs[row, best] >= llr_threshold
        else:
            accepted = True
        ranked = [(models.speakers[s], float(scores[row, s]), None if llrs is None else float(llrs[row, s]))
                  for s in order[row]]
        results.append(Identification(key, models.speakers[best] if accepted else NONE, ranked))
    return results


def format_identification(result: Identification) -> str:
    """``<key> <decision> <spk1> <score1> <llr1> ...`` (``-`` for an LLR without calibration)."""
    fields = [result.key, result.decision]
    for speaker, score, llr in result.ranked:
        fields += [speaker, f"{score:.6f}", "-" if llr is None else f"{llr:.6f}"]
    return " ".join(fields)
