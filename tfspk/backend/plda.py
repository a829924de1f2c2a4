"""Two-covariance PLDA as in Kaldi (ivector-compute-plda, ivector-copy-plda, ivector-plda-scoring).

Model (Kaldi ``Plda``): ``mean`` mu, ``transform`` T and diagonal ``psi`` such that in the space
``y = T (x - mu)`` the within-class covariance is I and the between-class covariance is diag(psi)
(psi descending). Scoring follows Ioffe (ECCV 2006) as restated in Kaldi ``Plda::LogLikelihoodRatio``:
for an enrolment ``u`` averaged over n vectors and a test ``v``

    mean_d = n psi_d / (n psi_d + 1) u_d,   var_d = 1 + psi_d / (n psi_d + 1)
    llr = -0.5 sum_d [log var_d + (v_d - mean_d)^2 / var_d] + 0.5 sum_d [log(1 + psi_d) + v_d^2 / (1 + psi_d)]

(the log 2 pi terms cancel). Training is Kaldi's EM for the within (W) and between (B) covariances.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from tfspk.io import objects as kaldi_objects
from tfspk.backend.scoring import pair_dots
from tfspk.errors import ToolError


@dataclass
class Plda:
    mean: np.ndarray       # [D]
    transform: np.ndarray  # [D, D]
    psi: np.ndarray        # [D], descending, >= 0

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def offset(self) -> np.ndarray:
        """Kaldi ``offset_ = -transform * mean``."""
        return -self.transform @ self.mean

    # ------------------------------------------------------------------ files
    @classmethod
    def read(cls, rxfilename: str) -> "Plda":
        return cls(*kaldi_objects.read_plda_parts(rxfilename))

    def write(self, wxfilename: str, binary: bool = True) -> None:
        kaldi_objects.write_plda_parts(wxfilename, self.mean, self.transform, self.psi, binary)

    # ------------------------------------------------------------------ smoothing
    def smoothed(self, factor: float) -> "Plda":
        """Kaldi ``SmoothWithinClassCovariance``: W <- W + factor B, expressed in the model's space.

        wc = 1 + factor psi;  psi <- psi / wc;  transform <- diag(wc^-1/2) transform.
        """
        if not 0.0 <= factor <= 1.0:
            raise ToolError(f"--smoothing={factor} must be in [0, 1]")
        within = 1.0 + factor * self.psi
        return Plda(self.mean.copy(), self.transform / np.sqrt(within)[:, None], self.psi / within)

    # ------------------------------------------------------------------ scoring
    def transform_vectors(self, vectors: np.ndarray, num_examples=1, normalize_length: bool = True,
                          simple_length_norm: bool = False):
        """Kaldi ``Plda::TransformIvector`` on rows: ``y = T x + offset``, optionally length-normalised.

        Length norm (default): ``y <- y sqrt(D / sum_d y_d^2 / (psi_d + 1/n))`` with n the number of
        vectors averaged (``num_examples``, scalar or per row); simple: ``y <- y sqrt(D) / ||y||``.
        Returns ``(transformed [N, D], factors [N])``; the factors are computed even when not applied.
        """
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ToolError(f"vector dimension {vectors.shape[-1]} does not match the PLDA dimension {self.dim}")
        transformed = vectors @ self.transform.T + self.offset
        counts = np.broadcast_to(np.asarray(num_examples, dtype=np.float64), (len(vectors),))
        if simple_length_norm:
            factors = np.sqrt(self.dim) / np.linalg.norm(transformed, axis=1)
        else:
            inv_covar = 1.0 / (self.psi[None, :] + 1.0 / counts[:, None])
            factors = np.sqrt(self.dim / np.einsum("ij,ij->i", transformed ** 2, inv_covar))
        if normalize_length:
            transformed = transformed * factors[:, None]
        return transformed, factors

    def _enroll_terms(self, enroll: np.ndarray, counts: np.ndarray):
        """Per-enrolment part of the LLR split as ``llr = c + q_u + t_n(v) + <a u / var, v>``:
        returns ``a u / var`` per row and ``c(n) + q_u`` with ``q_u = -0.5 sum_d a_d^2 u_d^2 / var_d``."""
        unique_counts, count_slot = np.unique(counts, return_inverse=True)
        n = unique_counts[:, None].astype(np.float64)
        shrink = n * self.psi / (n * self.psi + 1.0)           # a_d for each distinct n
        var = 1.0 + self.psi / (n * self.psi + 1.0)
        constant = -0.5 * np.log(var).sum(axis=1) + 0.5 * np.log1p(self.psi).sum()
        if len(unique_counts) == 1:  # the usual case: no per-row coefficient table needed
            scaled = enroll * (shrink[0] / var[0])
            quadratic = -0.5 * (enroll ** 2) @ (shrink[0] ** 2 / var[0])
        else:
            scaled = enroll * (shrink / var)[count_slot]
            quadratic = -0.5 * np.einsum("ij,ij->i", enroll ** 2, (shrink ** 2 / var)[count_slot])
        return scaled, constant[count_slot] + quadratic

    def _test_terms(self, test: np.ndarray, count: float) -> np.ndarray:
        """``t_n(v) = -0.5 sum_d v_d^2 (1/var_d(n) - 1/(1 + psi_d))`` for every test row."""
        var = 1.0 + self.psi / (count * self.psi + 1.0)
        return -0.5 * (test ** 2) @ (1.0 / var - 1.0 / (1.0 + self.psi))

    def log_likelihood_ratios(self, enroll: np.ndarray, enroll_counts, test: np.ndarray,
                              enroll_index: np.ndarray, test_index: np.ndarray) -> np.ndarray:
        """LLR of trials ``(enroll[enroll_index[k]], test[test_index[k]])`` on transformed vectors.

        Batched: the enrolment and test terms are computed once per vector, and only the cross term
        ``<a u / var, v>`` per trial (see :func:`tfspk.backend.scoring.pair_dots`).
        """
        counts = np.broadcast_to(np.asarray(enroll_counts, dtype=np.int64), (len(enroll),))
        if (counts < 1).any():
            raise ToolError("the number of enrolment utterances must be >= 1")
        scaled, enroll_terms = self._enroll_terms(enroll, counts)
        unique_counts, count_slot = np.unique(counts, return_inverse=True)
        test_terms = np.stack([self._test_terms(test, c) for c in unique_counts])
        scores = pair_dots(scaled, test, enroll_index, test_index)
        scores += enroll_terms[enroll_index]
        scores += test_terms[count_slot[enroll_index], test_index]
        return scores

    def score_matrix(self, enroll: np.ndarray, enroll_counts, test: np.ndarray) -> np.ndarray:
        """LLR of every enrolment against every test vector, ``[E, T]`` (for cohorts)."""
        counts = np.broadcast_to(np.asarray(enroll_counts, dtype=np.int64), (len(enroll),))
        scaled, enroll_terms = self._enroll_terms(enroll, counts)
        unique_counts, count_slot = np.unique(counts, return_inverse=True)
        test_terms = np.stack([self._test_terms(test, c) for c in unique_counts])
        return scaled @ test.T + enroll_terms[:, None] + test_terms[count_slot]


# ---------------------------------------------------------------------- training
@dataclass
class PldaStats:
    """Kaldi ``PldaStats``: class means, counts, and the within-class scatter around the class means."""
    class_means: np.ndarray   # [K, D]
    class_counts: np.ndarray  # [K]
    scatter: np.ndarray       # [D, D] sum_s sum_i (x_i - m_s)(x_i - m_s)^T

    @classmethod
    def from_groups(cls, groups: list[np.ndarray]) -> "PldaStats":
        """Stats from one ``[n_s, D]`` array of vectors per speaker."""
        if not groups:
            raise ToolError("No stats accumulated, unable to estimate PLDA.")
        dims = {g.shape[1] for g in groups}
        if len(dims) != 1:
            raise ToolError(f"vectors of different dimensions: {sorted(dims)}")
        dim = dims.pop()
        scatter = np.zeros((dim, dim))
        means = np.empty((len(groups), dim))
        for i, group in enumerate(groups):
            means[i] = group.mean(axis=0)
            centered = group - means[i]
            scatter += centered.T @ centered
        return cls(means, np.array([len(g) for g in groups], dtype=np.int64), scatter)

    @property
    def num_examples(self) -> int:
        return int(self.class_counts.sum())


def _inverse_spd(matrix: np.ndarray) -> np.ndarray:
    inverse = np.linalg.inv(matrix)
    return (inverse + inverse.T) / 2


def em_iteration(stats: PldaStats, within: np.ndarray, between: np.ndarray, global_mean: np.ndarray):
    """One Kaldi PLDA EM iteration; returns the new ``(within, between)``.

    For each class with mean offset m = m_s - mu and n vectors:
    Sigma = (B^-1 + n W^-1)^-1, w = Sigma n W^-1 m;
    B_stats += Sigma + w w^T (count 1); W_stats += n (Sigma + (m - w)(m - w)^T) (count 1),
    W_stats starting from the within-class scatter (count N - K).
    Classes are grouped by n so there is one matrix inverse per distinct n.
    """
    within_inv, between_inv = _inverse_spd(within), _inverse_spd(between)
    offsets = stats.class_means - global_mean
    within_stats = stats.scatter.copy()
    between_stats = np.zeros_like(within)
    for n in np.unique(stats.class_counts):
        members = offsets[stats.class_counts == n]
        mixed = _inverse_spd(between_inv + n * within_inv)
        posterior_means = members @ (n * within_inv) @ mixed  # rows are w^T (mixed is symmetric)
        residuals = members - posterior_means
        between_stats += len(members) * mixed + posterior_means.T @ posterior_means
        within_stats += n * (len(members) * mixed + residuals.T @ residuals)
    num_classes = len(stats.class_counts)
    return within_stats / stats.num_examples, between_stats / num_classes


def plda_from_covariances(mean: np.ndarray, within: np.ndarray, between: np.ndarray,
                          warn: Optional[Callable[[str], None]] = None) -> Plda:
    """Kaldi ``PldaEstimator::GetOutput``: T1 = chol(W)^-1, T1 B T1^T = U diag(psi) U^T, T = U^T T1."""
    try:
        cholesky = np.linalg.cholesky((within + within.T) / 2)
    except np.linalg.LinAlgError:
        raise ToolError("the within-class covariance is not positive definite: too little or "
                        "degenerate training data") from None
    whitening = np.linalg.inv(cholesky)
    between_proj = whitening @ between @ whitening.T
    psi, rotation = np.linalg.eigh((between_proj + between_proj.T) / 2)
    num_negative = int((psi < 0).sum())
    if num_negative and warn:
        warn(f"Floored {num_negative} eigenvalues of between-class variance to zero.")
    psi = np.maximum(psi, 0.0)
    order = np.argsort(-psi, kind="stable")
    return Plda(mean.copy(), rotation[:, order].T @ whitening, psi[order])


def estimate_plda(stats: PldaStats, num_em_iters: int = 10,
                  log: Optional[Callable[[str], None]] = None,
                  warn: Optional[Callable[[str], None]] = None) -> Plda:
    """Kaldi ivector-compute-plda: EM from W = B = I, then the diagonalising transform.

    The model mean is the mean of the class means (each speaker weighs 1), as in Kaldi.
    """
    num_classes, dim = stats.class_means.shape
    num_examples = stats.num_examples
    if num_classes == num_examples:
        raise ToolError("No speakers with multiple utterances, unable to estimate PLDA.")
    if num_examples <= dim:
        raise ToolError(f"Too little data to estimate PLDA: {num_examples} vectors for dimension {dim} "
                        "(need more vectors than dimensions)")
    if num_em_iters < 0:
        raise ToolError(f"--num-em-iters={num_em_iters} must be >= 0")
    if num_classes < 2:
        # One class mean gives no between-class scatter: the EM estimate of B decays towards 0.
        raise ToolError(f"only {num_classes} speaker: PLDA needs at least 2 speakers to estimate the between-class "
                        "covariance")
    global_mean = stats.class_means.mean(axis=0)
    within, between = np.eye(dim), np.eye(dim)
    for iteration in range(num_em_iters):
        within, between = em_iteration(stats, within, between, global_mean)
        if log:
            log(f"Plda estimation iteration {iteration} of {num_em_iters}: trace of within-class "
                f"variance {np.trace(within):.6g}, of between-class variance {np.trace(between):.6g}")
    return plda_from_covariances(global_mean, within, between, warn)
