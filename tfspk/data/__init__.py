"""tfspk.data: speaker-balanced segment sampling and the input pipeline (see docs/nnet.md#data)."""
from tfspk.data.pipeline import (OrderedPrefetcher, iterate_batches, iterate_validation_batches, make_dataset,
                                 tool_errors, validation_batches)
from tfspk.data.sampler import BatchPlan, SpeakerBalancedSampler, read_spk2int, write_spk2int
from tfspk.data.trials import TrialSet

__all__ = ["BatchPlan", "OrderedPrefetcher", "SpeakerBalancedSampler", "TrialSet", "iterate_batches",
           "iterate_validation_batches", "make_dataset", "read_spk2int", "tool_errors", "validation_batches",
           "write_spk2int"]
