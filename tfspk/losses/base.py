"""Shared machinery of the classification heads: class weights, cosines, scale, cross-entropy.

Notation of docs/losses.md: embeddings x_i [N, D], class weights W [D, C] (column w_j),
c_ij = cos(theta_ij) = x_i . w_j / (||x_i|| ||w_j||). The *scale* of an angular loss is either
the feature norm ||x_i|| ([Liu2019] default: no feature normalisation, so scale * c_ij = x_i . w^_j)
or a fixed s with normalised features ([Zhou2020]: s = 30).
"""
from __future__ import annotations

import dataclasses
import numbers

import keras
import tensorflow as tf

from tfspk.errors import ToolError
from tfspk.losses.annealing import warm_up_target
from tfspk.losses.registry import SCALE_NORM, param
from tfspk.params import build_params

#: Cosines are clipped to [-1 + COS_EPS, 1 - COS_EPS] before arccos/sqrt (their slopes are
#: infinite at +-1). 1e-6 is ~16 float32 ulps below 1, so the clip is representable.
COS_EPS = 1e-6
#: Floor of a squared norm: keeps x / ||x|| finite for tiny norms without biasing norms >= 1e-15
#: (tf.math.l2_normalize's 1e-12 floor would distort a 1e-8 embedding).
SQUARED_NORM_FLOOR = 1e-30


def to_float32(tensor) -> tf.Tensor:
    """``tensor`` as float32: losses are computed in float32 whatever the embeddings' dtype (bfloat16
    or float16 under a mixed-precision policy; the gradient flows back through the cast)."""
    tensor = tf.convert_to_tensor(tensor)
    return tensor if tensor.dtype == tf.float32 else tf.cast(tensor, tf.float32)


def inverse_norm(tensor: tf.Tensor, axis: int) -> tf.Tensor:
    """1 / ||tensor|| along ``axis`` (kept), guarded against zero."""
    squared = tf.reduce_sum(tf.square(tensor), axis=axis, keepdims=True)
    return tf.math.rsqrt(tf.maximum(squared, SQUARED_NORM_FLOOR))


def safe_norm(tensor: tf.Tensor, axis: int) -> tf.Tensor:
    """||tensor|| along ``axis`` (kept), with a finite gradient at 0."""
    squared = tf.reduce_sum(tf.square(tensor), axis=axis, keepdims=True)
    return tf.sqrt(tf.maximum(squared, SQUARED_NORM_FLOOR))


def clip_cos(cos: tf.Tensor) -> tf.Tensor:
    """Cosines clipped into the open interval where arccos and sqrt(1 - c^2) are smooth."""
    return tf.clip_by_value(cos, -1.0 + COS_EPS, 1.0 - COS_EPS)


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Batch mean of -log softmax(logits)[i, y_i] (stable: log-sum-exp inside TF's op)."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


@dataclasses.dataclass
class NoParams:
    """A loss without options."""

    def validate(self, owner: str) -> None:
        pass


class Head(keras.layers.Layer):
    """A classification head owning its class weights W [D, C].

    ``loss, logits = head(embeddings, labels, step, margin=True)``; ``margin=False`` is the
    validation mode (every margin and annealing off). ``logits`` are always the margin-free
    logits (what accuracy should be measured on).
    """

    Params = NoParams
    loss_name = "?"
    aliases: tuple = ()

    def __init__(self, num_classes: int, embedding_dim: int, params=None, name: str | None = None):
        # dtype float32: under a mixed-precision policy (mixed_bfloat16 / mixed_float16) the head still
        # computes cosines, margins, softmax and the loss in float32 and reads W unconverted; Keras
        # casts floating inputs to the layer's compute dtype, and _prepare casts again for direct calls.
        super().__init__(name=name or self.loss_name, dtype="float32")
        # step may be a Python int and margin a bool: let Keras pass them through untouched.
        self._allow_non_tensor_positional_args = True
        for what, value, low in (("num_classes", num_classes, 2), ("embedding_dim", embedding_dim, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ToolError(f"loss '{self.loss_name}': {what} must be an integer >= {low}, got {value!r}")
        self.num_classes = int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.params = build_params(self.Params, params, f"loss '{self.loss_name}'")
        self.kernel = self.add_weight(shape=(self.embedding_dim, self.num_classes), initializer="glorot_uniform",
                                      name="kernel", dtype="float32")
        self.built = True

    def normalized_weights(self) -> tf.Tensor:
        """Unit-norm class weights W^ [D, C] (used by MHE)."""
        return self.kernel * inverse_norm(self.kernel, axis=0)

    def _prepare(self, embeddings, labels):
        embeddings = to_float32(embeddings)
        labels = tf.cast(tf.convert_to_tensor(labels), tf.int32)
        if embeddings.shape.rank is not None and embeddings.shape.rank != 2:
            raise ToolError(f"loss '{self.loss_name}': embeddings must be [batch, {self.embedding_dim}], "
                            f"got shape {embeddings.shape}")
        if labels.shape.rank is not None and labels.shape.rank != 1:
            raise ToolError(f"loss '{self.loss_name}': labels must be a vector [batch], got shape {labels.shape}")
        if labels.shape[0] is not None and embeddings.shape[0] is not None and labels.shape[0] != embeddings.shape[0]:
            raise ToolError(f"loss '{self.loss_name}': {labels.shape[0]} labels for {embeddings.shape[0]} embeddings")
        last = embeddings.shape[-1]
        if last is not None and last != self.embedding_dim:
            raise ToolError(f"loss '{self.loss_name}': embeddings have dimension {last}, the head was built "
                            f"for {self.embedding_dim}")
        return embeddings, labels

    def call(self, embeddings, labels, step=0, margin=True):
        embeddings, labels = self._prepare(embeddings, labels)
        step = tf.convert_to_tensor(step)
        return self.compute(embeddings, labels, step, bool(margin))

    def compute(self, embeddings, labels, step, margin):  # pragma: no cover - abstract
        raise NotImplementedError


def _compiling_with_xla() -> bool:
    find = getattr(getattr(tf, "__internal__", None), "get_enclosing_xla_context", None)
    return find is None or find() is not None


def column_squared_norms(weights: tf.Tensor) -> tf.Tensor:
    """||w_c||^2 for every column. Without XLA, EuclideanNorm reads W once (square + sum would
    write and re-read a W-sized temporary: ~0.7 ms at 512 x 5994); XLA has no kernel for it but
    fuses square + sum by itself."""
    if _compiling_with_xla():
        return tf.reduce_sum(tf.square(weights), axis=0)
    return tf.square(tf.math.reduce_euclidean_norm(weights, axis=0))


@tf.custom_gradient
def matmul_unit_columns(inputs: tf.Tensor, weights: tf.Tensor):
    """inputs @ (weights with unit-norm columns), i.e. (X W)_nc / ||w_c||, with a fused gradient.

    The hand-written gradient touches the [D, C] weights twice instead of autodiff's four or
    five elementwise passes, which is what makes cosine heads cost about as much as softmax
    for C in the thousands. With z = (X W) r, r_c = 1 / ||w_c||:
        dX = (G r) W^T,   dW = X^T (G r) - W diag(r_c^2 sum_n G_nc z_nc)
    (r is constant where the norm hits its floor).
    """
    squared = column_squared_norms(weights)
    inv = tf.math.rsqrt(tf.maximum(squared, SQUARED_NORM_FLOOR))
    out = tf.matmul(inputs, weights) * inv

    def grad(upstream):
        scaled = upstream * inv
        d_inputs = tf.matmul(scaled, weights, transpose_b=True)
        shrink = tf.where(squared > SQUARED_NORM_FLOOR, tf.square(inv) * tf.reduce_sum(upstream * out, axis=0), 0.0)
        d_weights = tf.matmul(inputs, scaled, transpose_a=True) - weights * shrink
        return d_inputs, d_weights

    return out, grad


def target_indices(labels: tf.Tensor) -> tf.Tensor:
    """[[i, labels[i]]] for scatter/gather_nd into an [N, C] matrix."""
    return tf.stack([tf.range(tf.shape(labels)[0], dtype=labels.dtype), labels], axis=1)


class CosineHead(Head):
    """Base of the angular losses: logits z_ij = scale_i * cos(theta_ij).

    Everything works on the scaled logits (one [N, C] matrix) and recovers cosines only where
    a formula needs them, so a head costs little more than a plain softmax layer.
    """

    def scaled_cosines(self, embeddings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(logits = scale * cos [N, C], scale [N, 1]) for the configured scale.

        Feature norm: logits = x . w^ (no feature normalisation, [Liu2019]); fixed s:
        logits = s x^ . w^ ([Zhou2020]).
        """
        scale_option = self._scale_option()
        if scale_option == SCALE_NORM:
            scale = safe_norm(embeddings, axis=1)
            inputs = embeddings
        else:
            scale = tf.fill([tf.shape(embeddings)[0], 1], tf.constant(scale_option, tf.float32))
            inputs = embeddings * (scale_option * inverse_norm(embeddings, axis=1))
        return matmul_unit_columns(inputs, tf.convert_to_tensor(self.kernel)), scale

    def cosines(self, embeddings) -> tf.Tensor:
        """cos(theta_ij) [N, C] (for inspection and tests)."""
        embeddings = to_float32(embeddings)
        return matmul_unit_columns(embeddings * inverse_norm(embeddings, axis=1), tf.convert_to_tensor(self.kernel))

    def _scale_option(self):
        return self.params.scale

    def compute(self, embeddings, labels, step, margin):
        logits, scale = self.scaled_cosines(embeddings)
        if not margin:
            return cross_entropy(logits, labels), logits
        return self.margin_loss(logits, scale, labels, step), logits

    def margin_loss(self, logits, scale, labels, step):  # pragma: no cover - abstract
        raise NotImplementedError


class TargetMarginHead(CosineHead):
    """Cross-entropy where only the target logit changes: z_iy = scale * psi_train(theta_iy).

    Subclasses give psi as a function of the target cosine (``target_psi``); annealing ([Liu2019, eq. 8]) is applied here, once, for all of them.
    """

    #: steps of the margin warm-up (0 = off); the trainer sets it from schedule.margin_warmup_epochs
    margin_warmup_steps = 0

    def target_psi(self, cos_target: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_target(self, target_logit: tf.Tensor, scale: tf.Tensor, step) -> tf.Tensor:
        """psi_train(theta_iy) [N] (margin and annealing applied) from the target logits."""
        cos_target = target_logit / scale[:, 0]
        target = self.params.anneal_target(self.target_psi(cos_target), cos_target, step)
        return warm_up_target(target, cos_target, step, self.margin_warmup_steps)

    def _margined_logits(self, logits, scale, labels, step):
        index = target_indices(labels)
        target_logit = tf.gather_nd(logits, index)
        new_target = scale[:, 0] * self.training_target(target_logit, scale, step)
        return tf.tensor_scatter_nd_add(logits, index, new_target - target_logit)

    def training_logits(self, embeddings, labels, step) -> tf.Tensor:
        """The logits the training loss uses (margin on the target column only); for tests/inspection."""
        embeddings, labels = self._prepare(embeddings, labels)
        logits, scale = self.scaled_cosines(embeddings)
        return self._margined_logits(logits, scale, labels, step)

    def margin_loss(self, logits, scale, labels, step):
        return cross_entropy(self._margined_logits(logits, scale, labels, step), labels)


@dataclasses.dataclass
class ScaleParams:
    """The scale option of every angular loss ([Liu2019] default: the feature norm)."""

    ALIASES = {"s": "scale"}

    scale: float | str = param("norm", "'norm': logits = ||x|| cos (no feature normalisation, [Liu2019]); "
                                       "a number s: logits = s cos with normalised features ([Zhou2020])",
                               kind="scale")

