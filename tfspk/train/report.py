"""What a training run shows: Kaldi-style log lines, progress, TensorBoard summaries.

* Log lines look like Kaldi's (``LOG (tfspk-train[epoch 3]) ...``) and go to ``<exp>/log/train.log``
  (appended, so a resumed run continues the same log) and to stdout.
* Progress: a ``progress:`` line (global step/total, epoch k/N, loss, rate, elapsed, ETA) every
  ``log_every`` steps, at least once a minute and at the end of every epoch, in the log and on stdout
  (``steps/train_xvector.sh`` shows these lines while the job runs under run.pl/Slurm).
* ``<exp>/tb``: TensorBoard scalars (``tensorboard --logdir exp/xvector/tb``).
"""
from __future__ import annotations

import os
import sys
import time

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfspk.cli import Progress

PROGRAM = "tfspk-train"
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")).SerializeToString()


class TrainReport:
    def __init__(self, exp_dir: str, enabled: bool = True, log_every: int = 100, stream=None):
        self.enabled = enabled
        self.log_every = log_every
        self.stream = stream or sys.stdout
        self.log_handle = None
        self.writer = None
        if enabled:
            os.makedirs(os.path.join(exp_dir, "log"), exist_ok=True)
            self.log_handle = open(os.path.join(exp_dir, "log", "train.log"), "a", encoding="utf-8")
            self.writer = tf.summary.create_file_writer(os.path.join(exp_dir, "tb"))
        self.progress = None
        self.epoch = 0
        self.num_epochs = 0

    # -- lines
    def log(self, message: str, epoch: int | None = None) -> None:
        if not self.enabled:
            return
        where = f"{PROGRAM}[epoch {epoch}]" if epoch is not None else PROGRAM
        line = f"LOG ({where}) {message}"
        self.stream.write(line + "\n")
        self.stream.flush()
        self.log_handle.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
        self.log_handle.flush()

    def log_error(self, message: str) -> None:
        """An ERROR line into log/train.log only (the tool prints it to stderr itself); a log that
        cannot be written (full disk) is not a second error."""
        if self.log_handle is None:
            return
        try:
            self.log_handle.write(time.strftime("%Y-%m-%d %H:%M:%S ") + f"ERROR ({PROGRAM}) {message}\n")
            self.log_handle.flush()
        except OSError:
            pass

    # -- progress over the whole run
    def start_epoch(self, epoch: int, steps: int, num_epochs: int | None = None, clock=None) -> None:
        """Checkpoints are written at epoch ends, so a run (also a resumed one) starts at step (epoch-1) x steps."""
        self.epoch, self.num_epochs = epoch, num_epochs or epoch
        if self.progress is None:
            total = self.num_epochs * steps if num_epochs else None
            self.progress = Progress(total, "steps", start=(epoch - 1) * steps, every=self.log_every, clock=clock)

    def step(self, epoch: int, step_in_epoch: int, steps: int, global_step: int, loss: float,
             accuracy: float) -> None:
        if not self.enabled or self.progress is None:
            return
        if self.progress.due(global_step) or step_in_epoch == steps:
            self.log(f"progress: {self.progress.line(global_step)}; epoch {epoch}/{self.num_epochs} "
                     f"step {step_in_epoch}/{steps}: loss {loss:.4f} accuracy {accuracy:.4f}", epoch)

    # -- TensorBoard
    def scalars(self, values: dict, step: int) -> None:
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for name, value in values.items():
                if value is not None:
                    # tf.summary.scalar lives in the tensorboard package; the core op with the
                    # scalars-plugin metadata writes the same event without it.
                    tf.summary.write(name, tf.constant(float(value), tf.float32), metadata=_SCALAR_METADATA)
        self.writer.flush()

    def close(self) -> None:
        if self.log_handle is not None:
            self.log_handle.close()
        if self.writer is not None:
            self.writer.close()
