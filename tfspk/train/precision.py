"""Mixed precision for tfspk-train (config key ``mixed_precision``).

``mixed_float16`` (GPU) / ``mixed_bfloat16`` (CPU, TPU): the network's layers compute in 16 bits and
keep float32 variables (Keras mixed-precision policies). The policy is set only while the network is
built (layers capture it when constructed) and restored afterwards, so the loss head and auxiliary
losses compute in float32 on the embeddings cast to float32, and nothing else in the process changes. With float16 the optimizer is a dynamic-loss-scaling ``LossScaleOptimizer``: the
loss is multiplied by the scale S before differentiation and the gradients divided by S before the
update; a step with non-finite gradients is skipped and S halved (doubled after 2000 good steps).
bfloat16 has float32's exponent range and needs no loss scaling.
"""
from __future__ import annotations

import contextlib

from tfspk.errors import ToolError

POLICIES = ("none", "mixed_bfloat16", "mixed_float16")


@contextlib.contextmanager
def policy(name: str):
    """Set the Keras global dtype policy to ``name`` ("none" = float32) inside the block."""
    import keras
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32" if name == "none" else name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer, name: str, clip_norm: float):
    """The optimizer for policy ``name``: a LossScaleOptimizer around it for mixed_float16."""
    if name != "mixed_float16":
        return optimizer
    if clip_norm > 0:
        raise ToolError("config keys 'mixed_precision: mixed_float16' and 'optimizer.clip_norm' cannot be "
                        "combined (the gradients are loss-scaled when clipped); set optimizer.clip_norm=0")
    import keras
    return keras.optimizers.LossScaleOptimizer(optimizer)
