"""Auxiliary losses added to any main loss: Ring loss and MHE ([Liu2019, sec. 3.2-3.3]).

``aux(embeddings, labels, head) -> scalar``.
"""
from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfspk.losses.base import safe_norm, to_float32
from tfspk.losses.registry import param, register_aux, require
from tfspk.params import build_params


class AuxLoss(keras.layers.Layer):
    """Base: parses its Params; ``aux(embeddings, labels, head)``."""

    Params = None
    loss_name = "?"
    aliases: tuple = ()

    def __init__(self, params=None, name: str | None = None):
        # float32 whatever the global mixed-precision policy (as the heads, tfspk.losses.base.Head).
        super().__init__(name=name or self.loss_name, dtype="float32")
        self._allow_non_tensor_positional_args = True  # the head is passed positionally
        self.params = build_params(self.Params, params, f"auxiliary loss '{self.loss_name}'")
        self.built = True


@dataclasses.dataclass
class RingParams:
    weight: float = param(0.01, "lambda_R of [Liu2019, eq. 6] (0.01), >= 0")
    radius_init: float = param(20.0, "initial value of the trainable target norm R ([Liu2019]: 20), > 0")

    ALIASES = {"lambda_r": "weight", "lambda": "weight", "r": "radius_init", "radius": "radius_init"}

    def validate(self, owner):
        require(self.weight >= 0, owner, f"weight must be >= 0, got {self.weight}")
        require(self.radius_init > 0, owner, f"radius_init must be > 0, got {self.radius_init}")


@register_aux("ring", "ring_loss")
class RingLoss(AuxLoss):
    """L_R = lambda_R / N * sum_i (||x_i|| - R)^2 with R trainable ([Liu2019, eq. 6])."""

    Params = RingParams

    def __init__(self, params=None, name=None):
        super().__init__(params, name)
        self.radius = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.params.radius_init),
                                      name="radius", dtype="float32")

    def call(self, embeddings, labels=None, head=None):
        norms = safe_norm(to_float32(embeddings), axis=1)[:, 0]
        return self.params.weight * tf.reduce_mean(tf.square(norms - self.radius))


@dataclasses.dataclass
class MHEParams:
    weight: float = param(0.01, "lambda_M of [Liu2019, eq. 7] (0.01), >= 0")
    epsilon: float = param(1e-4, "added to ||w^_y - w^_j||^2 so coinciding class weights give a finite energy, > 0")

    ALIASES = {"lambda_m": "weight", "lambda": "weight", "eps": "epsilon"}

    def validate(self, owner):
        require(self.weight >= 0, owner, f"weight must be >= 0, got {self.weight}")
        require(self.epsilon > 0, owner, f"epsilon must be > 0, got {self.epsilon}")


@register_aux("mhe", "minimum_hyperspherical_energy")
class MHELoss(AuxLoss):
    """L_M = lambda_M / (N (C - 1)) sum_i sum_{j != y_i} 1 / ||w^_{y_i} - w^_j||^2 ([Liu2019, eq. 7],
    f(z) = 1/z^2), with ||a - b||^2 = 2 - 2 a.b for unit vectors. Acts on the class weights only
    (``head.normalized_weights()``), so it has no gradient w.r.t. the embeddings."""

    Params = MHEParams

    def call(self, embeddings, labels, head):
        weights = head.normalized_weights()                      # [D, C]
        labels = tf.cast(labels, tf.int32)
        target_weights = tf.gather(weights, labels, axis=1)      # [D, N]
        dots = tf.matmul(target_weights, weights, transpose_a=True)  # [N, C]
        squared_distance = tf.maximum(2.0 - 2.0 * dots, 0.0)
        energy = 1.0 / (squared_distance + self.params.epsilon)
        num_classes = tf.shape(weights)[1]
        non_target = 1.0 - tf.one_hot(labels, num_classes)
        count = tf.cast(tf.shape(labels)[0] * (num_classes - 1), tf.float32)
        return self.params.weight * tf.reduce_sum(energy * non_target) / count
