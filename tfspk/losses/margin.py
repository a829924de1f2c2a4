"""Softmax and the target-logit margin family: modified softmax, A-Softmax, ArcSoftmax (AAM),
AM-Softmax, combined (m1, m2, m3), DAM-Softmax and Real AM-Softmax.

Formulas: docs/losses.md; sources cited per class ([Li2022RAM] slides, [Zhou2020] Zhou et al.,
[Liu2019] Liu, He, Liu).
"""
from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from tfspk.losses.annealing import AnnealingParams
from tfspk.losses.base import (CosineHead, Head, NoParams, ScaleParams, TargetMarginHead, clip_cos,
                               cross_entropy, target_indices)
from tfspk.losses.registry import param, register_loss, require


# ----------------------------------------------------------------------------- psi functions

def chebyshev_cos_multiple(cos: tf.Tensor, m: int) -> tf.Tensor:
    """cos(m theta) as the Chebyshev polynomial T_m(cos theta), m in 1..4 (no arccos needed)."""
    if m == 1:
        return cos
    sq = tf.square(cos)
    if m == 2:
        return 2.0 * sq - 1.0
    if m == 3:
        return (4.0 * sq - 3.0) * cos
    if m == 4:
        return (8.0 * sq - 8.0) * sq + 1.0
    raise ValueError(f"Chebyshev form implemented for m in 1..4, got {m}")


def asoftmax_psi(cos: tf.Tensor, m: int) -> tf.Tensor:
    """psi(theta) = (-1)^k cos(m theta) - 2k, theta in [k pi/m, (k+1) pi/m] ([Liu2019, eq. 5]).

    k counts the thresholds j pi / m (j = 1..m-1) that theta exceeds, decided on the cosine
    (theta > j pi/m  <=>  cos < cos(j pi/m)), so neither arccos nor floor() of a rounded
    angle is involved. k carries no gradient (psi is continuous across the pieces).
    """
    k = tf.zeros_like(cos)
    for j in range(1, m):
        k += tf.cast(cos < math.cos(j * math.pi / m), cos.dtype)
    sign = 1.0 - 2.0 * tf.math.floormod(k, 2.0)
    return sign * chebyshev_cos_multiple(cos, m) - 2.0 * k


def monotone_cos(angle: tf.Tensor) -> tf.Tensor:
    """The monotone continuous extension of cos beyond pi: (-1)^k cos(t) - 2k, k = floor(t / pi).

    Equals cos(t) on [0, pi]; the same construction as A-Softmax's psi ([Liu2019, eq. 5]).
    """
    k = tf.stop_gradient(tf.floor(angle / math.pi))
    sign = 1.0 - 2.0 * tf.math.floormod(k, 2.0)
    return sign * tf.cos(angle) - 2.0 * k


def arc_psi(cos: tf.Tensor, m2: float) -> tf.Tensor:
    """cos(theta + m2) = c cos m2 - sqrt(1 - c^2) sin m2; beyond theta + m2 > pi the extension
    -cos(theta + m2) - 2 keeps it monotone (docs/losses.md, ArcSoftmax row; [Liu2019, eq. 3] with m1=1)."""
    cos = clip_cos(cos)
    sin = tf.sqrt(1.0 - tf.square(cos))
    shifted = cos * math.cos(m2) - sin * math.sin(m2)
    # theta + m2 > pi  <=>  theta > pi - m2  <=>  cos < -cos(m2)
    return tf.where(cos < -math.cos(m2), -shifted - 2.0, shifted)


# ----------------------------------------------------------------------------- plain softmax

@register_loss("softmax")
class Softmax(Head):
    """Plain softmax: z_ij = w_j . x_i + b_j, cross-entropy ([Liu2019, eq. 1]). No margin, no scale."""

    Params = NoParams

    def __init__(self, num_classes, embedding_dim, params=None, name=None):
        super().__init__(num_classes, embedding_dim, params, name)
        self.bias = self.add_weight(shape=(self.num_classes,), initializer="zeros", name="bias", dtype="float32")

    def compute(self, embeddings, labels, step, margin):
        logits = tf.matmul(embeddings, self.kernel) + self.bias
        return cross_entropy(logits, labels), logits


# ----------------------------------------------------------------------------- modified softmax

@dataclasses.dataclass
class ModifiedSoftmaxParams(ScaleParams):
    def validate(self, owner):
        pass


@register_loss("modified_softmax", "modsoftmax", "normface")
class ModifiedSoftmax(CosineHead):
    """z_ij = scale * cos(theta_ij), normalised weights, no bias ([Liu2019, eq. 2]; A-Softmax m1 = 1)."""

    Params = ModifiedSoftmaxParams

    def margin_loss(self, logits, scale, labels, step):
        return cross_entropy(logits, labels)


# ----------------------------------------------------------------------------- A-Softmax

@dataclasses.dataclass
class ASoftmaxParams(ScaleParams, AnnealingParams):
    m1: int = param(4, "multiplicative angular margin m1 in {1, 2, 3, 4} ([Liu2019]: 4)")
    anneal_gamma: float = param(1e-5, "gamma of [Liu2019, eq. 8] (A-Softmax: 1e-5)")
    anneal_lambda_0: float = param(10.0, "lambda_0 of [Liu2019, eq. 8] (A-Softmax: 10, the margin is never fully applied)")

    ALIASES = {"margin": "m1", "m": "m1"}

    def validate(self, owner):
        require(self.m1 in (1, 2, 3, 4), owner, f"m1 must be 1, 2, 3 or 4, got {self.m1}")
        self.validate_annealing(owner)


@register_loss("asoftmax", "a_softmax", "sphereface")
class ASoftmax(TargetMarginHead):
    """A-Softmax: z_iy = scale * psi(theta_iy), psi = (-1)^k cos(m1 theta) - 2k ([Liu2019, eq. 3-5],
    [Zhou2020, eq. 3-4]), annealed by [Liu2019, eq. 8]."""

    Params = ASoftmaxParams

    def target_psi(self, cos_target):
        return asoftmax_psi(cos_target, self.params.m1)


# ----------------------------------------------------------------------------- ArcSoftmax / AAM

@dataclasses.dataclass
class ArcSoftmaxParams(ScaleParams, AnnealingParams):
    m2: float = param(0.25, "additive angular margin m2 in radians, 0 <= m2 < pi ([Liu2019]: 0.25-0.30)")
    anneal_gamma: float = param(1e-5, "gamma of [Liu2019, eq. 8] (ArcSoftmax: 1e-5)")

    ALIASES = {"margin": "m2", "m": "m2"}

    def validate(self, owner):
        require(0.0 <= self.m2 < math.pi, owner, f"m2 must be in [0, pi), got {self.m2}")
        self.validate_annealing(owner)


@register_loss("arcsoftmax", "aam", "aamsoftmax", "arcface")
class ArcSoftmax(TargetMarginHead):
    """ArcSoftmax / AAM-Softmax: z_iy = scale * cos(theta_iy + m2) ([Liu2019, eq. 3] with m1 = 1,
    m3 = 0), monotone extension when theta + m2 > pi, annealed by [Liu2019, eq. 8]."""

    Params = ArcSoftmaxParams

    def target_psi(self, cos_target):
        return arc_psi(cos_target, self.params.m2)


# ----------------------------------------------------------------------------- AM-Softmax

@dataclasses.dataclass
class AMSoftmaxParams(ScaleParams, AnnealingParams):
    m3: float = param(0.2, "additive cosine margin m3, 0 <= m3 < 2 ([Liu2019] best: 0.2)")

    ALIASES = {"margin": "m3", "m": "m3"}

    def validate(self, owner):
        require(0.0 <= self.m3 < 2.0, owner, f"m3 must be in [0, 2), got {self.m3}")
        self.validate_annealing(owner)


@register_loss("amsoftmax", "am", "cosface", "lmcl")
class AMSoftmax(TargetMarginHead):
    """AM-Softmax: z_iy = scale * (cos theta_iy - m3) ([Liu2019, eq. 3] with m1 = 1, m2 = 0;
    [Zhou2020, eq. 5-6]), annealed by [Liu2019, eq. 8] (lambda_b 1000, gamma 1e-4, alpha 5, lambda_0 0)."""

    Params = AMSoftmaxParams

    def target_psi(self, cos_target):
        return cos_target - self.params.m3


# ----------------------------------------------------------------------------- combined (m1, m2, m3)

@dataclasses.dataclass
class CombinedParams(ScaleParams, AnnealingParams):
    m1: float = param(1.0, "multiplicative angular margin m1 >= 1 (meant for m1 ~ 1)")
    m2: float = param(0.2, "additive angular margin m2 in radians, 0 <= m2 < pi (meant for m2 < 1)")
    m3: float = param(0.1, "additive cosine margin m3, 0 <= m3 < 2")

    def validate(self, owner):
        require(1.0 <= self.m1 <= 4.0, owner, f"m1 must be in [1, 4], got {self.m1}")
        require(0.0 <= self.m2 < math.pi, owner, f"m2 must be in [0, pi), got {self.m2}")
        require(0.0 <= self.m3 < 2.0, owner, f"m3 must be in [0, 2), got {self.m3}")
        self.validate_annealing(owner)


@register_loss("combined", "combined_margin")
class CombinedMargin(TargetMarginHead):
    """z_iy = scale * (cos(m1 theta_iy + m2) - m3) ([Liu2019, eq. 3-4]), the cosine continued
    monotonically past pi ((-1)^k cos t - 2k, as [Liu2019, eq. 5]); annealed by [Liu2019, eq. 8]
    (AM-Softmax's defaults)."""

    Params = CombinedParams

    def target_psi(self, cos_target):
        theta = tf.acos(clip_cos(cos_target))
        return monotone_cos(self.params.m1 * theta + self.params.m2) - self.params.m3


# ----------------------------------------------------------------------------- DAM-Softmax

@dataclasses.dataclass
class DAMSoftmaxParams(ScaleParams, AnnealingParams):
    scale: float | str = param(30.0, "s of [Zhou2020] (30); 'norm' uses the feature norm instead", kind="scale")
    m: float = param(0.2, "base margin m of [Zhou2020, eq. 8] (0.2), >= 0")
    lambda_: float = param(2.0, "control factor lambda of [Zhou2020, eq. 8] (2), > 0")
    margin_gradient: bool = param(False, "let the gradient flow through m_i ([Zhou2020] treats it as a per-sample constant)")
    anneal: bool = param(False, "[Liu2019, eq. 8] annealing (not used by [Zhou2020], off by default)")

    ALIASES = {"margin": "m", "lambda": "lambda_", "control_factor": "lambda_"}

    def validate(self, owner):
        require(self.m >= 0, owner, f"m must be >= 0, got {self.m}")
        require(self.lambda_ > 0, owner, f"lambda must be > 0, got {self.lambda_}")
        self.validate_annealing(owner)


@register_loss("damsoftmax", "dam", "dynamic_margin")
class DAMSoftmax(TargetMarginHead):
    """DAM-Softmax: z_iy = s (cos theta_iy - m_i), m_i = m exp(1 - cos theta_iy) / lambda
    ([Zhou2020, eq. 7-10]). m_i is a per-sample constant unless margin_gradient is set."""

    Params = DAMSoftmaxParams

    def target_psi(self, cos_target):
        margins = self.params.m * tf.exp(1.0 - cos_target) / self.params.lambda_
        if not self.params.margin_gradient:
            margins = tf.stop_gradient(margins)
        return cos_target - margins


# ----------------------------------------------------------------------------- Real AM-Softmax

@dataclasses.dataclass
class RealAMSoftmaxParams(ScaleParams, AnnealingParams):
    scale: float | str = param(30.0, "s ([Li2022RAM]: 30); 'norm' uses the feature norm instead", kind="scale")
    m: float = param(0.25, "margin m, 0 <= m < 2 ([Li2022RAM]: 0.2-0.3)")
    form: str = param("exp", "'exp': log(1 + sum_j max(0, e^{s(c_j - c_y + m)} - 1)) ([Li2022RAM] slide formula, "
                             "default); 'hinge': log(1 + sum_j max(0, s(c_j - c_y + m)))",
                      choices=("exp", "hinge"))
    anneal: bool = param(False, "[Liu2019, eq. 8] annealing of the target term c_y - m (off by default)")

    ALIASES = {"margin": "m"}

    def validate(self, owner):
        require(0.0 <= self.m < 2.0, owner, f"m must be in [0, 2), got {self.m}")
        self.validate_annealing(owner)


@register_loss("real_amsoftmax", "ram", "ramsoftmax", "real_am")
class RealAMSoftmax(TargetMarginHead):
    """Real AM-Softmax ([Li2022RAM]): a non-target j contributes loss and gradient only while
    c_y - c_j < m. With a_j = s (c_j - (c_y - m)) over the non-targets:

    * exp form:   L_i = log(1 + sum_j max(0, exp(a_j) - 1))
    * hinge form: L_i = log(1 + sum_j max(0, a_j))
    """

    Params = RealAMSoftmaxParams

    def target_psi(self, cos_target):
        return cos_target - self.params.m

    def margin_loss(self, logits, scale, labels, step):
        index = target_indices(labels)
        target_logit = tf.gather_nd(logits, index)
        target = scale[:, 0] * self.training_target(target_logit, scale, step)  # s * (c_y - m)
        excess = logits - target[:, None]                                       # a_ij = s (c_ij - c_iy + m)
        excess = tf.tensor_scatter_nd_update(excess, index, tf.fill(tf.shape(labels), -1.0))  # drop j = y
        positive_part = tf.nn.relu(excess)  # max(0, a_ij): 0 for the separated non-targets and for j = y
        if self.params.form == "hinge":
            return tf.reduce_mean(tf.math.log1p(tf.reduce_sum(positive_part, axis=1)))
        return tf.reduce_mean(_log_one_plus_sum_expm1(positive_part))


def _log_one_plus_sum_expm1(positive_part: tf.Tensor) -> tf.Tensor:
    """log(1 + sum_j (e^{a_j} - 1)) per row for a_j >= 0 (terms with a_j = 0 vanish), stably.

    With M = max_j a_j: = M + log(e^{-M} + sum_j (e^{a_j - M} - e^{-M})). Every term is >= 0
    (exp is monotone), a_j = 0 contributes exactly 0, nothing overflows, and the derivative
    w.r.t. a_j is e^{a_j - M} / (...), i.e. exactly e^{a_j} / (1 + sum).
    """
    top = tf.stop_gradient(tf.reduce_max(positive_part, axis=1, keepdims=True))
    floor = tf.exp(-top)
    terms = tf.reduce_sum(tf.exp(positive_part - top) - floor, axis=1)
    return top[:, 0] + tf.math.log(floor[:, 0] + terms)
