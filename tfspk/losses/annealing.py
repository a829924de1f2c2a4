"""The annealing schedules of the margin losses (one implementation, used by every head).

* Margin annealing, [Liu2019] (Liu, He, Liu) eq. 8, section 3.4::

      psi_train(theta_y) = psi(theta_y) / (1 + lambda) + lambda / (1 + lambda) * cos(theta_y)
      lambda = max(lambda_0, lambda_b * (1 + gamma * step) ** (-alpha))

  The blend is applied to the target logit only; as the scale multiplies both terms it makes
  no difference whether it is applied before or after scaling. Published values ([Liu2019],
  section 4.2): lambda_b = 1000, alpha = 5 for all; gamma = 1e-4 (AM-Softmax) or 1e-5
  (A-Softmax, ArcSoftmax); lambda_0 = 0, except 10 for A-Softmax.

* Softmax -> Adaptive-Rectangle annealing, [Li2022AR, eq. 12-13]::

      L = lambda * L_AR + (1 - lambda) * L_softmax,   lambda = min(1, max(step - S1, 0) / S2)

* Margin warm-up (tfspk-train ``schedule.margin_warmup_epochs``): a multiplier on the margin rising
  linearly from 0 to 1 over the first ``N`` steps, applied to the (annealed) target value::

      psi_w = cos(theta_y) + w * (psi_train - cos(theta_y)),   w = min(1, step / N)

  For additive-cosine margins (AM-Softmax, psi = cos - m) this is exactly the margin ``w * m``;
  for the others it is the same linear blend towards the plain cosine as eq. 8 with
  ``1 / (1 + lambda) = w``.

``step`` is the global training step (an int64 scalar tensor held in the checkpoint, so the
schedules continue where they stopped after a resume).
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfspk.losses.registry import param, require


def margin_annealing_lambda(step, lambda_b: float, gamma: float, alpha: float, lambda_0: float) -> tf.Tensor:
    """lambda = max(lambda_0, lambda_b * (1 + gamma * step) ** -alpha) ([Liu2019, eq. 8]), float32."""
    step = tf.cast(step, tf.float64)  # float64: step counts beyond 2**24 stay exact
    decayed = lambda_b * tf.pow(1.0 + gamma * step, -tf.constant(alpha, tf.float64))
    return tf.cast(tf.maximum(tf.constant(lambda_0, tf.float64), decayed), tf.float32)


def blend_target(psi: tf.Tensor, cos_target: tf.Tensor, lam: tf.Tensor) -> tf.Tensor:
    """psi_train = (psi + lambda * cos) / (1 + lambda) ([Liu2019, eq. 8])."""
    return (psi + lam * cos_target) / (1.0 + lam)


def softmax_to_ar_weight(step, start: int, length: int) -> tf.Tensor:
    """lambda = min(1, max(step - S1, 0) / S2) ([Li2022AR, eq. 13]), float32."""
    step = tf.cast(step, tf.float64)
    ramp = tf.maximum(step - float(start), 0.0) / float(length)
    return tf.cast(tf.minimum(tf.constant(1.0, tf.float64), ramp), tf.float32)


def margin_warmup_weight(step, steps: int) -> tf.Tensor:
    """w = min(1, step / N), the margin multiplier of the margin warm-up, float32 (N = ``steps`` > 0)."""
    step = tf.cast(step, tf.float64)
    return tf.cast(tf.minimum(tf.constant(1.0, tf.float64), step / float(steps)), tf.float32)


def warm_up_target(psi_train: tf.Tensor, cos_target: tf.Tensor, step, steps: int) -> tf.Tensor:
    """psi_w = cos + w * (psi_train - cos), w = :func:`margin_warmup_weight` (identity when steps = 0)."""
    if not steps:
        return psi_train
    return cos_target + margin_warmup_weight(step, steps) * (psi_train - cos_target)


@dataclasses.dataclass
class AnnealingParams:
    """Margin annealing fields shared by the margin losses (defaults: [Liu2019], AM-Softmax)."""

    anneal: bool = param(True, "blend the margin target logit with the plain cosine, [Liu2019, eq. 8] "
                               "(set false to apply the full margin from step 0)")
    anneal_lambda_b: float = param(1000.0, "lambda_b of [Liu2019, eq. 8] (start weight of the plain cosine)")
    anneal_gamma: float = param(1e-4, "gamma of [Liu2019, eq. 8] (decay speed per step)")
    anneal_alpha: float = param(5.0, "alpha of [Liu2019, eq. 8] (decay power)")
    anneal_lambda_0: float = param(0.0, "lambda_0 of [Liu2019, eq. 8] (floor of lambda; >0 never applies the full margin)")

    def validate_annealing(self, owner: str) -> None:
        for name in ("anneal_lambda_b", "anneal_gamma", "anneal_alpha", "anneal_lambda_0"):
            require(getattr(self, name) >= 0, owner, f"{name} must be >= 0, got {getattr(self, name)}")

    def annealing_lambda(self, step) -> tf.Tensor | None:
        """The current lambda, or None when annealing is off (the full margin applies)."""
        if not self.anneal:
            return None
        return margin_annealing_lambda(step, self.anneal_lambda_b, self.anneal_gamma,
                                       self.anneal_alpha, self.anneal_lambda_0)

    def anneal_target(self, psi: tf.Tensor, cos_target: tf.Tensor, step) -> tf.Tensor:
        """The training target value: psi itself, or its eq. 8 blend with cos when annealing."""
        lam = self.annealing_lambda(step)
        return psi if lam is None else blend_target(psi, cos_target, lam)
