"""Fine-tuning: start an experiment from a trained or imported one, on the same or on new speakers.

``init_from: <exp-dir>`` (config key) with the ``finetune`` section below:

* ``head: keep`` -- the classification head of ``<exp-dir>``'s latest checkpoint and the network weights of
  its ``final/model.weights.h5`` (the model extraction uses: with ``schedule.average_last`` the average of the
  last epochs, which the checkpoint's last-step weights are not; the checkpoint's network when the source is
  unfinished) are loaded (large-margin fine-tuning on the same speakers: the speaker tables must be equal).
* ``head: mean`` -- the network weights of ``<exp-dir>/final/model.weights.h5`` (the weights extraction uses;
  the only ones an imported experiment dir has; else the latest checkpoint) are loaded, and a new head
  for this experiment's speakers is made: class weight ``w_j`` = the mean of the unit-length ``embedding_b``
  of speaker ``j``'s training segments (the batches of the first ``head_init_steps`` steps, inference-mode
  network), scaled to the mean column norm of the freshly initialised head. An angular head then starts
  with ``cos(theta_ij)`` = the cosine between an embedding and its speaker's mean direction, the
  prototype classifier the pretrained network already implies; a speaker none of those batches holds
  keeps its random column (logged).
* ``head: random`` -- the network weights as for ``mean``; the new head keeps its random initialisation.
* ``head: auto`` (default) -- ``keep`` when ``<exp-dir>/spk2int`` equals this experiment's, else ``mean``.

The optimizer state, global step and LR policy start afresh in every case: the fine-tuning run follows
its own config's ``optimizer`` and ``schedule`` sections (its own learning rate and schedule).

Freezing: ``freeze_blocks: N`` keeps the weights of the network's first N blocks (``-1``: every block,
the whole embedding network) unchanged during the first ``freeze_steps`` steps: their gradients (the
L2 term's included) are zeroed inside the training step, as a function of the global step, so a
resumed run freezes exactly as an uninterrupted one. A block is the group of layers sharing a name
prefix before the first ``_`` in the network's layer order (``tdnn1 .. tdnn7``; ``front, block1 ..
block3, mfa, asp, embedding`` of ECAPA-TDNN; ``stem, stage1 .. stage4, embedding`` of the ResNets); the
log lists the frozen ones. Batch-norm moving statistics of frozen blocks still follow the new data
(they are statistics, not weights). With Adam, the moment estimates of frozen weights stay zero, so
the first updates after ``freeze_steps`` are larger than the LR suggests (m/sqrt(v) ~ 3 while v warms
up); a lower ``optimizer.lr`` or SGD avoids it.

A config with ``init_from`` and without a ``nnet`` section takes the network (``nnet``) of
``<exp-dir>/config.yaml`` and, without a ``features`` section, its features too (:func:`inherit_source`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tfspk.errors import ToolError
from tfspk.params import param

HEAD_MODES = ("auto", "keep", "mean", "random")
WEIGHTS_FILE = os.path.join("final", "model.weights.h5")


@dataclass
class FinetuneConfig:
    head: str = param("auto", "with init_from: keep (network + head of the source checkpoint; same speakers) | mean (source "
                     "network, a new head from this experiment's speakers' mean embeddings) | random (source "
                     "network, a new random head) | auto (keep if the source's spk2int is this experiment's, "
                     "else mean); see docs/training.md, Fine-tuning", choices=HEAD_MODES)
    head_init_steps: int = param(20, "head mean: the training batches of this many steps give the speakers' mean "
                                "embeddings", check=">0")
    freeze_blocks: int = param(0, "keep the first N blocks of the network unchanged for freeze_steps steps (-1: the "
                              "whole embedding network; 0: none)", check=">=-1")
    freeze_steps: int = param(0, "steps during which freeze_blocks are frozen (from step 0 of this experiment)",
                             check=">=0")


def check_values(config) -> None:
    """The check across the ``finetune`` keys (each key's own range is checked on its field)."""
    ft = config.finetune
    if (ft.freeze_blocks != 0) != (ft.freeze_steps > 0):
        raise ToolError(f"config keys 'finetune.freeze_blocks' ({ft.freeze_blocks}) and 'finetune.freeze_steps' "
                        f"({ft.freeze_steps}): freezing needs both (a block count and a number of steps) or neither")
    if ft.head != "auto" and not config.init_from:
        raise ToolError(f"config key 'finetune.head' ({ft.head}) needs init_from (the experiment to start from)")


# ---------------------------------------------------------------------------------------------- config
def _source_config(source_dir: str) -> dict:
    from tfspk.train.config import load_yaml
    path = os.path.join(source_dir, "config.yaml")
    if not os.path.isfile(path):
        raise ToolError(f"init_from: {path} not found (expected a tfspk experiment dir, trained or imported)")
    return load_yaml(path)


def inherit_source(data: dict) -> dict:
    """A config dict with ``init_from`` and no ``nnet`` section gets the source experiment's network (its front
    end, ``<source>/features.yaml``, is recorded for the new experiment when the ``features`` section is
    empty: :func:`tfspk.train.expdir.record_front_end`)."""
    source_dir = data.get("init_from")
    if not source_dir or "nnet" in data:
        return data
    source = _source_config(str(source_dir))
    data = dict(data)
    if "nnet" not in source:
        raise ToolError(f"init_from: {os.path.join(source_dir, 'config.yaml')} has no nnet section")
    data["nnet"] = source["nnet"]
    return data


# ---------------------------------------------------------------------------------------------- blocks
def network_blocks(model) -> list:
    """``[(block name, [trainable variables])]`` in layer order: layers sharing the name prefix before the
    first ``_`` form a block; layers without trainable weights are skipped."""
    blocks, index = [], {}
    for layer in model.layers:
        variables = list(layer.trainable_variables)
        if not variables:
            continue
        name = layer.name.split("_", 1)[0]
        if name not in index:
            index[name] = len(blocks)
            blocks.append((name, []))
        blocks[index[name]][1].extend(variables)
    return blocks


class GradientFreeze:
    """Zeroes the gradients of the frozen variables while ``step < freeze_steps`` (inside the step's graph)."""

    def __init__(self, config, model, variables: list):
        ft = config.finetune
        self.steps = int(ft.freeze_steps)
        self.blocks = []
        frozen = set()
        if ft.freeze_blocks != 0 and self.steps > 0:
            blocks = network_blocks(model)
            count = len(blocks) if ft.freeze_blocks == -1 else ft.freeze_blocks
            if count > len(blocks):
                raise ToolError(f"config key 'finetune.freeze_blocks': {count} blocks asked, the network has "
                                f"{len(blocks)} ({', '.join(name for name, _ in blocks)})")
            for name, block_vars in blocks[:count]:
                self.blocks.append(name)
                frozen.update(id(v) for v in block_vars)
        self.mask = [id(v) in frozen for v in variables]

    @property
    def active(self) -> bool:
        return any(self.mask)

    def __call__(self, grads, step):
        if not self.active:
            return grads
        import tensorflow as tf
        keep = tf.cast(tf.cast(step, tf.int64) >= self.steps, tf.float32)
        return [g if not frozen or g is None else g * tf.cast(keep, g.dtype)
                for g, frozen in zip(grads, self.mask)]

    def describe(self) -> str:
        return f"blocks {', '.join(self.blocks)} frozen for the first {self.steps} steps" if self.active else ""


# ---------------------------------------------------------------------------------------------- init
def _same_file(a: str, b: str) -> bool:
    if not (os.path.isfile(a) and os.path.isfile(b)):
        return False
    with open(a, encoding="utf-8") as one, open(b, encoding="utf-8") as two:
        return one.read() == two.read()


def _check_network(trainer, source_dir: str) -> None:
    """The source's network and feature dimension must be this experiment's (ToolError naming what differs)."""
    from tfspk import nnet
    source = _source_config(source_dir)
    where = os.path.join(source_dir, "config.yaml")
    if source.get("feat_dim") is not None and int(source["feat_dim"]) != int(trainer.feat_dim):
        raise ToolError(f"init_from: {where} has feat_dim {source['feat_dim']}, this experiment's features have "
                        f"{trainer.feat_dim}")
    theirs = nnet.network_config(nnet.network_from_config(source.get("nnet"), f"{where}: nnet"))
    ours = {"name": trainer.config.nnet.name, "params": dict(trainer.config.nnet.params)}
    if theirs != ours:
        diff = [k for k in sorted(set(theirs["params"]) | set(ours["params"]))
                if theirs["params"].get(k) != ours["params"].get(k)]
        what = f"network {theirs['name']} -> {ours['name']}" if theirs["name"] != ours["name"] else \
            ", ".join(f"{k}: {theirs['params'].get(k)!r} -> {ours['params'].get(k)!r}" for k in diff[:5])
        raise ToolError(f"init_from: the network of {where} differs from this experiment's ({what}); leave out the "
                        "nnet section to take the source's")


def _load_network(trainer, source_dir: str) -> str:
    import tensorflow as tf
    weights = os.path.join(source_dir, WEIGHTS_FILE)
    if os.path.isfile(weights):
        try:
            trainer.model.load_weights(weights)
        except (ValueError, KeyError, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ToolError(f"init_from: cannot load {weights} into this network ({first})") from None
        return weights
    ckpt_dir = os.path.join(source_dir, "ckpt")
    latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
    if latest is None:
        raise ToolError(f"init_from: neither {weights} nor a checkpoint in {ckpt_dir}")
    try:
        tf.train.Checkpoint(model=trainer.model).restore(latest).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ToolError(f"init_from: cannot load {latest} into this network ({first})") from None
    return latest


def _labelled_batches(source, steps: int):
    """(feats, labels) of the first ``steps`` training steps of the training input ``source``
    (:class:`tfspk.train.inputs.TrainingInput`; pure functions of the seed: the training run sees the same
    batches)."""
    for index, (feats, labels) in enumerate(source.dataset(0)):
        if index >= steps:
            break
        yield np.asarray(feats), np.asarray(labels)


def mean_embedding_head(trainer, sampler, steps: int) -> tuple[int, int]:
    """Set the head's class weights to the speakers' mean unit embeddings (see module doc); returns
    (classes set, classes left random)."""
    import tensorflow as tf
    kernel = trainer.head.kernel
    dim, classes = int(kernel.shape[0]), int(kernel.shape[1])
    sums = np.zeros((classes, dim), np.float64)
    counts = np.zeros(classes, np.int64)
    embed = tf.function(lambda feats: trainer.model(feats, training=False)["embedding_b"], autograph=False,
                        input_signature=[tf.TensorSpec([None, None, trainer.feat_dim], tf.float32)])
    for feats, labels in _labelled_batches(sampler, steps):
        vectors = embed(tf.constant(feats, tf.float32)).numpy().astype(np.float64)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        labels = np.asarray(labels, np.int64)
        np.add.at(sums, labels, vectors)
        counts += np.bincount(labels, minlength=classes)
    current = kernel.numpy().astype(np.float64)
    scale = float(np.mean(np.linalg.norm(current, axis=0)))
    seen = counts > 0
    means = sums[seen] / np.maximum(np.linalg.norm(sums[seen], axis=1, keepdims=True), 1e-12)
    current[:, seen] = scale * means.T
    kernel.assign(current.astype(np.float32))
    return int(seen.sum()), int((~seen).sum())


def init_from(trainer, sampler, config, exp_dir: str, log) -> None:
    """Initialise ``trainer`` from ``config.init_from`` as ``config.finetune`` says; ``log(text)`` reports."""
    from tfspk.train.warmstart import init_from_experiment
    source_dir = config.init_from
    if not os.path.isdir(source_dir):
        raise ToolError(f"init_from: {source_dir} is not a directory")
    ft = config.finetune
    own_table = os.path.join(exp_dir, "spk2int")
    head = ft.head
    if head == "auto":
        head = "keep" if _same_file(os.path.join(source_dir, "spk2int"), own_table) else "mean"
    if head == "keep":
        loaded = init_from_experiment(trainer, source_dir, own_table)
        if os.path.isfile(os.path.join(source_dir, WEIGHTS_FILE)):
            network = _load_network(trainer, source_dir)
            log(f"initialised the loss head from {loaded} and the network from {network}")
        else:
            log(f"initialised network and loss head from {loaded}")
        return
    _check_network(trainer, source_dir)
    loaded = _load_network(trainer, source_dir)
    if head == "mean":
        seen, unseen = mean_embedding_head(trainer, sampler, ft.head_init_steps)
        log(f"initialised the network from {loaded}; new head of {trainer.num_classes} classes from the mean "
            f"embeddings of the batches of {ft.head_init_steps} steps ({seen} classes"
            + (f"; {unseen} not in those batches keep random weights)" if unseen else ")"))
    else:
        log(f"initialised the network from {loaded}; new random head of {trainer.num_classes} classes")
