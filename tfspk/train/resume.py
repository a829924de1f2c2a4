"""Resuming an experiment: which config changes a checkpoint survives, and restoring it with a clear error."""
from __future__ import annotations

import tensorflow as tf

from tfspk.errors import ToolError

# Config sections a resumed run may change (they do not change what the checkpoint means).
RESUMABLE_CHANGES = ("schedule", "log_every", "keep_checkpoints", "strategy", "jit_compile", "valid.eer_data",
                     "valid.eer_trials", "valid.batch_size", "data.prefetch", "data.num_threads",
                     "data.readers", "data.worker_nice", "data.service",
                     "sync_batchnorm", "init_from", "features.conf")


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
    """Keys that differ; ToolError if any of them changes what the checkpoint means.

    A saved ``nnet`` section of the older flat form (``{arch: tdnn, frame_dim: ...}``) is compared in the
    current form ``{name, params}``, so experiment dirs of older versions resume.
    """
    saved = dict(saved)
    # Experiment dirs written before the 'features' section recorded nothing: the same as an empty one.
    if "features" not in saved and isinstance(current.get("features"), dict):
        saved["features"] = {key: "" for key in current["features"]}
    if "finetune" not in saved and isinstance(current.get("finetune"), dict):  # dirs written before it existed
        saved["finetune"] = current["finetune"]
    if isinstance(saved.get("nnet"), dict) and "params" not in saved["nnet"]:
        from tfspk import nnet
        try:
            saved["nnet"] = nnet.network_config(nnet.network_from_config(saved["nnet"]))
        except ToolError:
            pass  # then it differs from the current section and the error below names it
    old, new = _flatten(saved), _flatten(current)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k != "tfspk_version")
    fatal = [k for k in changed if not any(k == r or k.startswith(r + ".") for r in RESUMABLE_CHANGES)]
    if fatal:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in fatal[:5])
        raise ToolError(f"{path} has a checkpoint of a different experiment ({details}); use a new "
                        "experiment dir, or --resume false to start over")
    return changed


def restore(checkpoint, path, ckpt_dir):
    """Restore ``path`` into ``checkpoint``; a checkpoint of another layout is the user's to move away."""
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ToolError(f"cannot resume from {path}: it does not match this network/trainer "
                        f"({first_line}); move {ckpt_dir} away to train from scratch") from None


