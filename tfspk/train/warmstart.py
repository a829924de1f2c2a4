"""``init_from``: start a new experiment from the network and head weights of a trained one.

Used by the large-margin fine-tuning stage of the recipes: the weights of ``<exp>/ckpt`` (latest
checkpoint) are loaded into the new trainer's network and classification head; the optimizer
state, global step and LR-policy state start afresh. The speaker table must be the same, as the
head's class weights are indexed by it.
"""
from __future__ import annotations

import os

import tensorflow as tf

from tfspk.errors import ToolError


def init_from_experiment(trainer, source_dir: str, spk2int_path: str) -> str:
    """Load network + head weights of ``source_dir``'s latest checkpoint into ``trainer``; return its path."""
    ckpt_dir = os.path.join(source_dir, "ckpt")
    latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
    if latest is None:
        raise ToolError(f"init_from: no checkpoint in {ckpt_dir}")
    source_table = os.path.join(source_dir, "spk2int")
    if os.path.isfile(source_table) and os.path.isfile(spk2int_path):
        with open(source_table, encoding="utf-8") as a, open(spk2int_path, encoding="utf-8") as b:
            if a.read() != b.read():
                raise ToolError(f"init_from: {source_table} differs from this experiment's speakers "
                                f"({spk2int_path}); fine-tuning needs the same training speakers")
    partial = tf.train.Checkpoint(model=trainer.model, head=trainer.head)
    try:
        partial.restore(latest).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ToolError(f"init_from: cannot load {latest} into this network and loss ({first_line})") from None
    return latest
