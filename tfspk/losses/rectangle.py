"""Batch-wise and pair-weighted losses on cosine logits: Adaptive Rectangle ([Li2022AR]) and
the class-level Circle loss (compared in [Li2022AR])."""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfspk.losses.annealing import softmax_to_ar_weight
from tfspk.losses.base import CosineHead, cross_entropy, target_indices
from tfspk.losses.registry import param, register_loss, require


def _drop_targets(matrix: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """``matrix`` with every target entry set to -inf (excluded from a log-sum-exp)."""
    return tf.tensor_scatter_nd_update(matrix, index, tf.fill(tf.shape(index)[:1], -float("inf")))


# ----------------------------------------------------------------------------- Adaptive Rectangle

@dataclasses.dataclass
class AdaptiveRectangleParams:
    alpha: float | str = param(30.0, "scale factor alpha of [Li2022AR, eq. 1/6] (not given there; 30 as for AM-Softmax); "
                                     "'norm': each logit carries its own sample's feature norm", kind="scale")
    m1: float = param(0.15, "additive margin m1 of [Li2022AR, eq. 7] (0.15), >= 0")
    m2: float = param(0.1, "adaptive margin m2 of [Li2022AR, eq. 7] (0.1), >= 0")
    lambda_h: float = param(0.15, "lambda of the hard-pair test s_n - mean(s_p) + lambda > 0 ([Li2022AR, eq. 4]; not "
                                  "given there: default m1, i.e. hard = within the margin of the mean target score)")
    anneal: bool = param(True, "softmax -> AR annealing of [Li2022AR, eq. 12-13] (false: pure AR loss from step 0)")
    anneal_s1: int = param(1000, "S1 of [Li2022AR, eq. 13]: steps of pure softmax (not given there)")
    anneal_s2: int = param(4000, "S2 of [Li2022AR, eq. 13]: steps of the linear ramp to pure AR (not given there)")

    ALIASES = {"margin": "m1", "scale": "alpha", "s": "alpha", "s1": "anneal_s1", "s2": "anneal_s2"}

    def validate(self, owner):
        require(self.m1 >= 0, owner, f"m1 must be >= 0, got {self.m1}")
        require(self.m2 >= 0, owner, f"m2 must be >= 0, got {self.m2}")
        require(self.anneal_s1 >= 0, owner, f"anneal_s1 must be >= 0, got {self.anneal_s1}")
        require(self.anneal_s2 >= 1, owner, f"anneal_s2 must be >= 1, got {self.anneal_s2}")


@register_loss("adaptive_rectangle", "ar", "ar_softmax", "rectangle")
class AdaptiveRectangle(CosineHead):
    """Adaptive Rectangle loss ([Li2022AR, eq. 1, 4-7, 12-13]).

    Every sample's target score s_p^i = c_{i y_i} must beat every non-target score of the
    batch, s_n^{jk} = c_jk (k != y_j)::

        I_jk = [s_n^{jk} - mean_i s_p^i + lambda_h > 0]          (no gradient)
        m_jk = m1 + m2 I_jk - m2 / 2
        L_AR = mean_i log(1 + sum_{j, k != y_j} exp(alpha (s_n^{jk} + m_jk - s_p^i)))
             = mean_i softplus(log Z - alpha s_p^i),  log Z = logsumexp_{j,k} alpha (s_n^{jk} + m_jk)

    (O(N C), the cost of softmax), annealed as L = lambda L_AR + (1 - lambda) L_softmax with
    lambda = min(1, max(step - S1, 0) / S2) and L_softmax the modified softmax on alpha cos.
    """

    Params = AdaptiveRectangleParams

    def _scale_option(self):
        return self.params.alpha

    def rectangle_loss(self, logits, scale, labels):
        """L_AR (no annealing), from logits = scale * cos."""
        params = self.params
        index = target_indices(labels)
        positive_logit = tf.gather_nd(logits, index)                     # scale_i s_p^i
        mean_positive = tf.reduce_mean(positive_logit / scale[:, 0])     # mean_i s_p^i
        # s_n - mean(s_p) + lambda_h > 0, compared on the logits (scale > 0) to skip an [N, C] division
        hard = tf.stop_gradient(logits > scale * (mean_positive - params.lambda_h))
        negative = tf.where(hard, logits + scale * (params.m1 + params.m2 / 2.0),
                            logits + scale * (params.m1 - params.m2 / 2.0))
        log_z = tf.reduce_logsumexp(_drop_targets(negative, index))
        return tf.reduce_mean(tf.nn.softplus(log_z - positive_logit))

    def margin_loss(self, logits, scale, labels, step):
        rectangle = self.rectangle_loss(logits, scale, labels)
        if not self.params.anneal:
            return rectangle
        weight = softmax_to_ar_weight(step, self.params.anneal_s1, self.params.anneal_s2)
        # Past the ramp (weight 1) the softmax term is skipped rather than multiplied by zero.
        return tf.cond(weight >= 1.0, lambda: rectangle,
                       lambda: weight * rectangle + (1.0 - weight) * cross_entropy(logits, labels))


# ----------------------------------------------------------------------------- Circle loss

@dataclasses.dataclass
class CircleParams:
    gamma: float | str = param(64.0, "scale factor gamma (e.g. 64); 'norm' uses the feature norm", kind="scale")
    m: float = param(0.25, "relaxation margin m, 0 <= m < 1 (typical 0.25)")

    ALIASES = {"margin": "m", "scale": "gamma", "s": "gamma"}

    def validate(self, owner):
        require(0.0 <= self.m < 1.0, owner, f"m must be in [0, 1), got {self.m}")


@register_loss("circle", "circle_loss")
class Circle(CosineHead):
    """Class-level Circle loss (as compared in [Li2022AR]; docs/losses.md)::

        alpha_p = [1 + m - s_p]_+,  alpha_n^j = [s_n^j + m]_+      (no gradient)
        L_i = softplus(logsumexp_{j != y} gamma alpha_n^j (s_n^j - m) - gamma alpha_p (s_p - 1 + m))

    No annealing (it has no target-logit margin to blend).
    """

    Params = CircleParams

    def _scale_option(self):
        return self.params.gamma

    def margin_loss(self, logits, scale, labels, step):
        m = self.params.m
        index = target_indices(labels)
        positive = tf.gather_nd(logits, index) / scale[:, 0]
        alpha_p = tf.stop_gradient(tf.nn.relu(1.0 + m - positive))
        alpha_n = tf.stop_gradient(tf.nn.relu(logits / scale + m))
        negative = _drop_targets(alpha_n * (logits - scale * m), index)  # scale alpha_n (s_n - m)
        positive_logit = scale[:, 0] * alpha_p * (positive - (1.0 - m))
        return tf.reduce_mean(tf.nn.softplus(tf.reduce_logsumexp(negative, axis=1) - positive_logit))
