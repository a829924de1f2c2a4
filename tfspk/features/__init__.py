"""Kaldi-exact features: MFCC/fbank (kaldi-native-fbank), spectrograms (numpy), energy VAD, sliding CMN, voiced
frames; the registry of feature types and post-processing steps; the front end recorded in an experiment dir.

See docs/features.md for the command-line tools and steps built on these functions.
"""
from tfspk.features.cmvn import SlidingCmnOptions, apply_cmvn_sliding
from tfspk.features.mfcc import FeatureExtractor, fbank, mfcc, num_frames, spectrogram
from tfspk.features.options import FbankOptions, FrameOptions, MelOptions, MfccOptions, SpectrogramOptions
from tfspk.features.registry import FEATURE_TYPES, POST_STEPS, FeatureType, PostStep
from tfspk.features import kaldi_types, deltas, speechbrain_fbank  # noqa: F401,E402  (the built-in entries register themselves)
from tfspk.features.frontend import FrontEnd, front_end_from_section, read_front_end, write_front_end
from tfspk.features.vad import VadOptions, compute_vad, select_voiced_frames

__all__ = ["FEATURE_TYPES", "FbankOptions", "FeatureExtractor", "FeatureType", "FrameOptions", "FrontEnd",
           "MelOptions", "MfccOptions", "POST_STEPS", "PostStep", "SlidingCmnOptions", "SpectrogramOptions",
           "VadOptions", "apply_cmvn_sliding", "compute_vad", "fbank", "front_end_from_section", "mfcc",
           "num_frames", "read_front_end", "select_voiced_frames", "spectrogram", "write_front_end"]
