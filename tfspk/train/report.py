"""What a training run shows: Kaldi-style log lines, a progress bar, TensorBoard summaries.

* Log lines look like Kaldi's (``LOG (tfspk-train[epoch 3]) ...``) and go to ``<exp>/log/train.log``
  (appended, so a resumed run continues the same log) and to stdout.
* Progress inside an epoch: a tqdm bar when stderr is a terminal, otherwise a plain line every
  ``log_every`` steps (batch logs under run.pl/Slurm stay readable).
* ``<exp>/tb``: TensorBoard scalars (``tensorboard --logdir exp/xvector/tb``).
"""
from __future__ import annotations

import os
import sys
import time

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

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
        self.bar = None
        self.epoch_start = 0.0

    # -- lines
    def log(self, message: str, epoch: int | None = None) -> None:
        if not self.enabled:
            return
        where = f"{PROGRAM}[epoch {epoch}]" if epoch is not None else PROGRAM
        line = f"LOG ({where}) {message}"
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
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

    # -- progress within an epoch
    def start_epoch(self, epoch: int, steps: int) -> None:
        self.epoch_start = time.time()
        if self.enabled and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=steps, desc=f"epoch {epoch}", unit="step", leave=False, file=sys.stderr)

    def step(self, epoch: int, step_in_epoch: int, steps: int, global_step: int, loss: float,
             accuracy: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)
        elif step_in_epoch % self.log_every == 0 or step_in_epoch == steps:
            rate = step_in_epoch / max(time.time() - self.epoch_start, 1e-9)
            self.log(f"step {global_step} ({step_in_epoch}/{steps} of epoch): loss {loss:.4f} "
                     f"accuracy {accuracy:.4f} ({rate:.2f} steps/s)", epoch)

    def end_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

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
        self.end_epoch()
        if self.log_handle is not None:
            self.log_handle.close()
        if self.writer is not None:
            self.writer.close()
