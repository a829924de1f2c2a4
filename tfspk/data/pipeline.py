"""Feeding batches to TensorFlow: reader threads or processes, bounded prefetch, tf.data wrapper.

Batches are built by a thread pool (file reads and numpy's long loops release the GIL; the rest
of a batch's Python holds it) or, with ``processes=True``, by forked worker processes (no GIL
shared: two workers use two cores; the batch comes back pickled, ~0.5 ms CPU for 2.3 MB), and handed
out strictly in step order, so the stream is reproducible whatever the timing. At most
``prefetch`` batches are in flight: memory is bounded by
``prefetch * num_speakers * max_frames * feat_dim * 4`` bytes whatever the corpus size.

Worker processes can run at a lower CPU priority than the trainer (``nice``, ``data.worker_nice``): on
a machine where they share the cores with the training step, they then take the cycles the step leaves
idle (between its ops, while it waits on its own threads) instead of preempting the step's threads,
which TensorFlow's thread pool then waits for at every op; a worker that falls behind still gets the
CPU back as soon as the trainer blocks on its batch (docs/training.md, Performance). Reader threads
keep the trainer's priority: a low-priority thread preempted while it holds the GIL would stall the
trainer's Python instead (measured: a worse step ratio).
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from tfspk.errors import ToolError
from tfspk.io.lifetime import tie_to_parent


class OrderedPrefetcher:
    """Iterator over ``load(item)`` for the items of ``items``, computed by ``num_threads`` threads
    (or forked processes with ``processes``), at most ``prefetch`` ahead, returned in order. Errors
    of a load are raised by ``next`` at its turn (a worker's ToolError as itself). Each worker process
    adds ``nice`` to its niceness before its first item (threads keep the caller's: see above)."""

    def __init__(self, items, load, num_threads: int = 4, prefetch: int = 8, processes: bool = False,
                 nice: int = 0):
        if num_threads < 1 or prefetch < 1:
            raise ToolError(f"num_threads and prefetch must be >= 1, got {num_threads} and {prefetch}")
        if not 0 <= nice <= 19:
            raise ToolError(f"nice must be 0..19, got {nice}")
        self._items = iter(items)
        self._load = load
        self._prefetch = prefetch
        self._pending = collections.deque()
        if processes:
            # The workers are forked when the first item is submitted (below) and inherit ``load``
            # from this registry; nothing but the item and the result crosses the pipe.
            self._key = next(_KEYS)
            _WORKER_LOADS[self._key] = load
            self._pool = ProcessPoolExecutor(max_workers=num_threads, mp_context=multiprocessing.get_context("fork"),
                                             initializer=tie_to_parent, initargs=(nice,))  # die with the trainer
            self._submit = lambda item: self._pool.submit(_load_in_worker, self._key, item)
        else:
            self._key = None
            self._pool = ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix="tfspk-data")
            self._submit = lambda item: self._pool.submit(self._load, item)
        try:
            self._fill()
        finally:
            _WORKER_LOADS.pop(self._key, None)   # the forked workers have their copy

    def _fill(self):
        while len(self._pending) < self._prefetch:
            item = next(self._items, _END)
            if item is _END:
                return
            self._pending.append(self._submit(item))

    def __iter__(self):
        return self

    def __next__(self):
        if not self._pending:
            self.close()
            raise StopIteration
        future = self._pending.popleft()
        try:
            result = future.result()
        except BaseException:
            self.close()
            raise
        self._fill()
        return result

    def close(self):
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()


_END = object()
_WORKER_LOADS = {}
_KEYS = itertools.count()


def _load_in_worker(key, item):
    return _WORKER_LOADS[key](item)


def iterate_batches(sampler, start_step: int = 0, num_steps: int | None = None, num_threads: int = 4,
                    prefetch: int = 8, processes: bool = False, nice: int = 0) -> OrderedPrefetcher:
    """numpy batches (feats [B, L, F] float32, labels [B] int32) of steps start_step, start_step+1, ...

    Endless unless ``num_steps`` is given. Raises ToolError (bad archive, wrong dimension) directly.
    Resuming at step k gives the same batches as an uninterrupted run from step 0 (see sampler),
    whether ``num_threads`` threads or (``processes``) forked processes build them.
    """
    steps = itertools.count(start_step) if num_steps is None else range(start_step, start_step + num_steps)
    return OrderedPrefetcher(steps, sampler.batch, num_threads, prefetch, processes, nice)


def iterate_validation_batches(sampler, batch_size: int = 64, num_threads: int = 4,
                               prefetch: int = 4) -> OrderedPrefetcher:
    """The held-out validation set as numpy batches; the same batches every call."""
    return OrderedPrefetcher(sampler.validation_plans(batch_size), sampler.load, num_threads, prefetch)


def _signature(sampler, batch_size):
    import tensorflow as tf
    return (tf.TensorSpec([batch_size, None, sampler.feat_dim], tf.float32), tf.TensorSpec([batch_size], tf.int32))


def _dataset_from(sampler, make_iterator, batch_size, prefetch):
    import tensorflow as tf

    def generate():
        try:
            with make_iterator() as batches:
                yield from batches
        except ToolError as err:
            sampler.last_error = err  # tf.data turns it into an OpError; tool_errors() restores it
            raise

    dataset = tf.data.Dataset.from_generator(generate, output_signature=_signature(sampler, batch_size))
    return dataset.prefetch(prefetch)


def make_dataset(sampler, start_step: int = 0, num_steps: int | None = None, num_threads: int = 4,
                 prefetch: int = 8, processes: bool = False, nice: int = 0):
    """tf.data.Dataset of (feats [num_speakers, None, feat_dim] float32, labels [num_speakers] int32).

    Iterate it inside ``with tool_errors(sampler):`` so a bad archive surfaces as the ToolError.
    """
    return _dataset_from(sampler, lambda: iterate_batches(sampler, start_step, num_steps, num_threads, prefetch,
                                                          processes, nice), sampler.num_speakers, 2)


def validation_batches(sampler, batch_size: int = 64, num_threads: int = 4):
    """tf.data.Dataset of the validation batches (the last one may be smaller: batch dim is None)."""
    return _dataset_from(sampler, lambda: iterate_validation_batches(sampler, batch_size, num_threads),
                         None, 2)


@contextlib.contextmanager
def tool_errors(sampler):
    """Re-raise the sampler's ToolError when tf.data reports a failed generator."""
    import tensorflow as tf
    sampler.last_error = None
    try:
        yield
    except tf.errors.OpError:
        if sampler.last_error is not None:
            raise sampler.last_error from None
        raise

