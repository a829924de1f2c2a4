"""The recipe's back-end as one object: how two embeddings (or a speaker model and an embedding) are scored.

Kinds (the chains of ``egs/*/v2/local/score_plda_cosine.sh``, the tools named in brackets):

* ``cosine``: ``cos(u, v)`` of the raw embeddings (no back-end files);
* ``centred-cosine``: ``cos(u - m, v - m)`` with ``m`` the training mean (``ivector-mean``,
  ``ivector-subtract-global-mean``, ``tfspk-cosine-scoring``);
* ``plda``: ``x -> x - m -> L x + b`` (LDA, ``transform-vec``) ``-> x sqrt(D) / |x|``
  (``ivector-normalize-length``) ``->`` PLDA log-likelihood ratio with length normalisation in the PLDA
  space (``ivector-plda-scoring --normalize-length=true``, :class:`~tfspk.backend.plda.Plda`).

A speaker enrolled from ``n`` utterances is the mean of their raw embeddings with the count ``n``, as
Kaldi's ``ivector-mean <spk2utt> ... <num-utts>`` writes it (``spk_xvector.scp``, ``num_utts.ark``); PLDA
scores it with ``--num-utts`` semantics (the enrolment posterior of [Ioffe2006] over ``n`` vectors), the
cosine kinds with the mean vector. Every formula lives in :mod:`~tfspk.backend.vectors`,
:mod:`~tfspk.backend.plda` and :mod:`~tfspk.backend.scoring`; this module only chains them.

On disk (a directory, Kaldi files as the recipe writes them): ``mean.vec`` (double vector),
``transform.mat`` (``[R, D+1]`` affine LDA) and ``plda``, whichever the kind needs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tfspk.backend import vectors as vector_ops
from tfspk.backend.plda import Plda
from tfspk.errors import ToolError
from tfspk.io import objects as kaldi_objects

KINDS = ("cosine", "centred-cosine", "plda")
MEAN, TRANSFORM, PLDA = "mean.vec", "transform.mat", "plda"
_NEEDS = {"cosine": (), "centred-cosine": (MEAN,), "plda": (MEAN, TRANSFORM, PLDA)}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ToolError(f"unknown scoring back-end '{kind}'; valid: {', '.join(KINDS)}")
    return kind


@dataclass
class Scorer:
    """One scoring back-end (module docstring); arrays are float64."""
    kind: str = "cosine"
    mean: np.ndarray | None = None        # [D]
    transform: np.ndarray | None = None   # [R, D] or [R, D + 1]
    plda: Plda | None = None

    @property
    def input_dim(self) -> int | None:
        """Dimension of the embeddings the back-end takes (None: any, raw cosine)."""
        return None if self.mean is None else int(self.mean.shape[0])

    # ------------------------------------------------------------------ files
    @classmethod
    def read(cls, directory: str, kind: str) -> "Scorer":
        """The back-end of ``kind`` from the recipe's files in ``directory`` (mean.vec, transform.mat, plda)."""
        check_kind(kind)
        for name in _NEEDS[kind]:
            if not os.path.isfile(os.path.join(directory, name)):
                raise ToolError(f"the {kind} back-end needs {os.path.join(directory, name)} (written by the "
                                "recipe's back-end stage, e.g. local/score_plda_cosine.sh)")
        scorer = cls(kind)
        if MEAN in _NEEDS[kind]:
            scorer.mean = kaldi_objects.read_vector(os.path.join(directory, MEAN)).astype(np.float64)
        if TRANSFORM in _NEEDS[kind]:
            scorer.transform = kaldi_objects.read_matrix(os.path.join(directory, TRANSFORM)).astype(np.float64)
        if PLDA in _NEEDS[kind]:
            scorer.plda = Plda.read(os.path.join(directory, PLDA))
        scorer.check(directory)
        return scorer

    def check(self, where: str) -> None:
        """ToolError when the parts do not fit together (dimensions of mean, LDA and PLDA)."""
        if self.transform is not None:
            columns = self.transform.shape[1]
            if columns not in (self.input_dim, self.input_dim + 1):
                raise ToolError(f"{where}: {TRANSFORM} has {columns} columns but {MEAN} has dimension "
                                f"{self.input_dim} (expected {self.input_dim} or {self.input_dim + 1} columns)")
            if self.plda is not None and self.plda.dim != self.transform.shape[0]:
                raise ToolError(f"{where}: the PLDA has dimension {self.plda.dim} but the LDA gives "
                                f"{self.transform.shape[0]}")

    def write(self, directory: str) -> list[str]:
        """The back-end's files into ``directory`` (binary Kaldi objects); returns their names."""
        os.makedirs(directory, exist_ok=True)
        if self.mean is not None:
            kaldi_objects.write_vector(os.path.join(directory, MEAN), self.mean, binary=True, double=True)
        if self.transform is not None:
            kaldi_objects.write_matrix(os.path.join(directory, TRANSFORM), self.transform, binary=True)
        if self.plda is not None:
            self.plda.write(os.path.join(directory, PLDA), binary=True)
        return list(_NEEDS[self.kind])

    # ------------------------------------------------------------------ scoring
    def check_dim(self, dim: int, what: str = "the embeddings") -> None:
        if self.input_dim is not None and dim != self.input_dim:
            raise ToolError(f"{what} have dimension {dim} but the {self.kind} back-end takes {self.input_dim}")

    def _plda_space(self, rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
        centred = rows - self.mean
        reduced = vector_ops.apply_transform(self.transform, centred)
        normalised, _ = vector_ops.normalize_length(reduced)
        transformed, _ = self.plda.transform_vectors(normalised, counts, normalize_length=True)
        return transformed

    def score_matrix(self, enroll, test, enroll_counts=1) -> np.ndarray:
        """Scores ``[E, T]`` of every enrolment row (a mean over ``enroll_counts`` utterances) against every
        test row (one utterance each)."""
        enroll = np.atleast_2d(np.asarray(enroll, dtype=np.float64))
        test = np.atleast_2d(np.asarray(test, dtype=np.float64))
        if enroll.shape[1] != test.shape[1]:
            raise ToolError(f"enrolment vectors have dimension {enroll.shape[1]}, test vectors {test.shape[1]}")
        self.check_dim(enroll.shape[1])
        counts = np.broadcast_to(np.asarray(enroll_counts, dtype=np.int64), (len(enroll),))
        if (counts < 1).any():
            raise ToolError("the number of enrolment utterances must be at least 1")
        if self.kind == "plda":
            left = self._plda_space(enroll, counts)
            right = self._plda_space(test, np.ones(len(test), dtype=np.int64))
            return self.plda.score_matrix(left, counts, right)
        if self.kind == "centred-cosine":
            enroll, test = enroll - self.mean, test - self.mean
        return vector_ops.unit_length(enroll) @ vector_ops.unit_length(test).T

    def score(self, enroll, test, enroll_count: int = 1) -> float:
        """Score of one enrolment vector (mean of ``enroll_count`` utterances) against one test vector."""
        return float(self.score_matrix(np.asarray(enroll)[None], np.asarray(test)[None], enroll_count)[0, 0])
