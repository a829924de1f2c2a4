"""Resuming an experiment: which config changes a checkpoint survives, and restoring it with a clear error."""
from __future__ import annotations

import tensorflow as tf

from tfspk.errors import ToolError
from tfspk.nnet import network_config, network_from_config

# Config sections a resumed run may change (they do not change what the checkpoint means).
RESUMABLE_CHANGES = ("schedule", "log_every", "keep_checkpoints", "strategy", "jit_compile", "valid.eer_data",
                     "valid.eer_trials", "valid.batch_size", "data.prefetch", "data.num_threads",
                     "data.readers", "data.worker_nice", "data.service", "data.service_timeout",
                     # the batches of a run that trained are the same either way: before the key existed a
                     # file at another rate was an error, and with all files at the rate nothing is resampled
                     "data.allow_resample",
                     "sync_batchnorm", "init_from", "features.conf", "features.vad_conf", "features.vad_mfcc_conf")
# (the options files may move; their contents are compared through <exp>/features.yaml, see
# tfspk.train.expdir.record_front_end)


def _flatten(data, prefix=""):
    flat = {}
    for key, value in data.items():
        name = prefix + key
        if isinstance(value, dict) and key not in ("params",) and name != "nnet":
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def check_resume_compatible(saved: dict, current: dict, path: str) -> list:
    """Keys that differ; ToolError if any of them changes what the checkpoint means. The saved ``nnet``
    section gets its network's defaults filled in first: a parameter added to a network after the run
    started (whose default is the network the run trained) is no change."""
    old, new = _flatten(_with_network_defaults(saved)), _flatten(current)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k != "tfspk_version")
    fatal = [k for k in changed if not any(k == r or k.startswith(r + ".") for r in RESUMABLE_CHANGES)]
    if fatal:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in fatal[:5])
        raise ToolError(f"{path} has a checkpoint of a different experiment ({details}); use a new "
                        "experiment dir, or --resume false to start over")
    return changed


def _with_network_defaults(config: dict) -> dict:
    if not isinstance(config, dict) or not isinstance(config.get("nnet"), dict):
        return config
    try:
        return {**config, "nnet": network_config(network_from_config(config["nnet"]))}
    except ToolError:  # compared as it is: the difference is then reported as usual
        return config


def restore(checkpoint, path, ckpt_dir):
    """Restore ``path`` into ``checkpoint``; a checkpoint of another layout is the user's to move away."""
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ToolError(f"cannot resume from {path}: it does not match this network/trainer "
                        f"({first_line}); move {ckpt_dir} away to train from scratch") from None


