"""Who may write an experiment dir, whether its model is finished, and the front end it records.

* :class:`ExpDirLock`: one trainer per experiment dir (``<exp>/.lock``; the mechanism, shared with
  the other output dirs, is :class:`tfspk.io.dirlock.DirLock`): a second trainer stops with an error
  naming the owner; a stale lock (its owner is gone, e.g. after kill -9) is reported and taken over.
* :func:`back_up_previous_run`: ``--resume false`` on a dir that holds a run moves that run's files
  to ``<exp>/.backup`` (as Kaldi scripts keep replaced files in ``.backup``), so the dir never
  mixes two runs.
* The completion marker ``final/DONE`` is written (atomically) only at the very end of a
  training that finished, and removed as soon as a trainer starts changing the dir.
  :func:`tfspk.nnet.saved.check_finished` is what extraction calls before it uses ``final/model.weights.h5``.
* :func:`record_front_end`: ``<exp>/features.yaml``, the network's front end resolved from the config's
  ``features:`` section (:mod:`tfspk.features.frontend`), which every consumer of the experiment reads.

The layout of a finished experiment dir (what an importer writes too): ``config.yaml`` (the effective
config with ``feat_dim``, ``num_classes`` and ``nnet``), ``features.yaml``, ``spk2int``,
``final/model.weights.h5`` and ``final/DONE``.
"""
from __future__ import annotations

import os
import shutil
import time

from tfspk.errors import ToolError
from tfspk.features.frontend import FRONT_END_FILE, FrontEnd, front_end_from_section, write_front_end
from tfspk.io.atomic import atomic_open
from tfspk.io.dirlock import DirLock
from tfspk.nnet.saved import DONE, LOCK  # the marker is read by extraction (tfspk.nnet.saved.check_finished)

BACKUP = ".backup"
# What tfspk-train writes into an experiment dir (a --resume false run moves these away).
RUN_FILES = ("config.yaml", FRONT_END_FILE, "spk2int", "ckpt", "final", "log", "tb")


class ExpDirLock(DirLock):
    """Exclusive right of one trainer to ``exp_dir`` (:class:`tfspk.io.dirlock.DirLock`, the one lock
    mechanism of output dirs). ``log`` receives the message about a stale lock that is taken over."""

    def __init__(self, exp_dir: str, command: str = "", log=None):
        super().__init__(exp_dir, command=command, log=log, what="tfspk-train", activity="trained",
                         kind="experiment dir", name=LOCK)
        self.exp_dir = exp_dir


def has_previous_run(exp_dir: str) -> bool:
    return any(os.path.exists(os.path.join(exp_dir, name)) for name in RUN_FILES)


def back_up_previous_run(exp_dir: str, log=None) -> str | None:
    """Move the files of an earlier run (:data:`RUN_FILES`) to ``<exp>/.backup`` (an earlier backup is
    replaced). Returns the backup dir, or None if there was nothing to move."""
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(exp_dir, name))]
    if not present:
        return None
    backup = os.path.join(exp_dir, BACKUP)
    try:
        if os.path.exists(backup):
            shutil.rmtree(backup)
        os.makedirs(backup)
        for name in present:
            os.rename(os.path.join(exp_dir, name), os.path.join(backup, name))
    except OSError as err:
        raise ToolError(f"cannot move the earlier run in {exp_dir} to {backup}: "
                        f"{err.strerror or err} ({err.filename or backup})") from None
    if log:
        log(f"--resume false: moved the earlier run's {', '.join(present)} to {backup}")
    return backup


def clear_done(exp_dir: str) -> None:
    """Withdraw the completion marker: from now on the dir is being changed."""
    try:
        os.remove(os.path.join(exp_dir, DONE))
    except FileNotFoundError:
        pass


def mark_done(exp_dir: str, **facts) -> None:
    """Write ``final/DONE`` (atomically; ``key: value`` lines) at the very end of a finished training."""
    os.makedirs(os.path.join(exp_dir, "final"), exist_ok=True)
    with atomic_open(os.path.join(exp_dir, DONE)) as handle:
        handle.write(f"finished: {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        for key, value in facts.items():
            handle.write(f"{key}: {value}\n")


def front_end_for_audio(config) -> FrontEnd:
    """The front end of training from audio (``features.type`` '' is fbank); its ``vad`` is set once the
    input knows whether it crops voiced audio."""
    features = config.features
    if features.cmn == "sliding" and features.cmn_window != 300:
        raise ToolError(f"config key 'features.cmn_window': training from audio applies sliding CMN over 300 "
                        f"frames (steps/prepare_feats_for_egs.sh's window); got {features.cmn_window}")
    return front_end_from_section(features, vad=features.vad == "true")


def record_front_end(exp_dir: str, config, source_input, resuming: bool = False) -> str:
    """Write ``<exp>/features.yaml`` (the front end of ``source_input.front_end`` when training from audio, else
    of the ``features:`` section, or, fine-tuning with an empty section, of the ``init_from`` experiment; feats
    and shards are taken as voiced frames unless ``features.vad`` is false) and return the line the log gets. With offline features and neither ``features.type`` nor
    ``features.conf`` nothing is recorded (an earlier run's file is removed). ToolError if the front end's
    dimension is not the input's, or if ``resuming`` and it differs from the recorded one (the options
    files' contents changed)."""
    path = os.path.join(exp_dir, FRONT_END_FILE)
    front_end = getattr(source_input, "front_end", None)
    if front_end is None:
        features = config.features
        inherited = config.init_from and os.path.isfile(os.path.join(config.init_from, FRONT_END_FILE))
        if not features.type and not features.conf and inherited:
            from tfspk.features.frontend import read_front_end
            front_end = read_front_end(config.init_from)   # fine-tuning keeps the source's front end
        elif not features.type and not features.conf:
            if os.path.exists(path):
                os.remove(path)
            return (f"no front end recorded (features.type and features.conf are empty and data.source is "
                    f"{config.data.source}): "
                    "extraction works, export and tfspk-embed need features.type (docs/features.md)")
        else:
            front_end = front_end_from_section(features, vad=features.vad != "false")
    post = f", post {', '.join(name for name, _ in front_end.post)}" if front_end.post else ""
    if front_end.dim != source_input.feat_dim:
        conf = f" of {config.features.conf}" if config.features.conf else ""
        raise ToolError(f"config key 'features': the front end gives {front_end.dim}-dimensional features "
                        f"({front_end.feature_type}{conf}{post}) but the training input has dimension "
                        f"{source_input.feat_dim}")
    if resuming and os.path.isfile(path):
        from tfspk.features.frontend import read_front_end
        if read_front_end(exp_dir).to_dict() != front_end.to_dict():
            raise ToolError(f"{exp_dir} has a checkpoint trained with another front end than the features: section "
                            f"gives now (compare {path}); use a new experiment dir, or --resume false to start over")
    write_front_end(exp_dir, front_end)
    window = f" {front_end.cmn_window}" if front_end.cmn == "sliding" else ""
    return (f"front end {path}: {front_end.feature_type} ({front_end.dim} dims at {front_end.sample_rate:g} Hz"
            f"{post}), CMN {front_end.cmn}{window}, VAD {'on' if front_end.vad else 'off'}")
