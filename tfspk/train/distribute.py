"""Choosing a tf.distribute strategy, and the facts the trainer needs about it.

* ``one``: one device (the first GPU, else the CPU).
* ``mirrored``: :class:`tf.distribute.MirroredStrategy` over all local GPUs (or, for tests, the
  logical CPU devices configured before TensorFlow initialises).
* ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy` across hosts described by the
  ``TF_CONFIG`` environment variable (every worker runs the same ``tfspk-train`` command).
* ``auto``: ``multiworker`` if ``TF_CONFIG`` names more than one worker, ``mirrored`` with several
  GPUs, else ``one``.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from tfspk.errors import ToolError


def _tf_config() -> dict:
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ToolError(f"TF_CONFIG is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ToolError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    return config


def num_workers_in_tf_config() -> int:
    cluster = _tf_config().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy for ``name``. Call it before any other TensorFlow work: a multi-worker strategy
    must configure the collective ops before the runtime starts (listing devices starts it)."""
    if name == "auto" and num_workers_in_tf_config() > 1:
        name = "multiworker"
    if name == "multiworker":
        config = _tf_config()
        if not config:
            raise ToolError("strategy multiworker needs the TF_CONFIG environment variable (cluster and task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            name = "mirrored"
        else:
            name = "one"
    if name == "one":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise ToolError(f"unknown strategy '{name}'; valid: auto, one, mirrored, multiworker")


def is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy) -> bool:
    """The worker that writes logs, checkpoints and the final model (task 0 / chief)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (resolver.task_type == "worker" and resolver.task_id == 0
                                                     and "chief" not in resolver.cluster_spec().as_dict())


def worker_index(strategy) -> int:
    if not is_multi_worker(strategy):
        return 0
    return int(strategy.cluster_resolver.task_id or 0)
