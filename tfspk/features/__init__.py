"""Kaldi-exact features: MFCC/fbank (kaldi-native-fbank), spectrograms (numpy), energy VAD, sliding CMN, voiced frames.

See docs/features.md for the command-line tools and steps built on these functions.
"""
from tfspk.features.cmvn import SlidingCmnOptions, apply_cmvn_sliding
from tfspk.features.mfcc import FeatureExtractor, fbank, mfcc, num_frames, spectrogram
from tfspk.features.options import FbankOptions, FrameOptions, MelOptions, MfccOptions, SpectrogramOptions
from tfspk.features.vad import VadOptions, compute_vad, select_voiced_frames

__all__ = ["FbankOptions", "FeatureExtractor", "FrameOptions", "MelOptions", "MfccOptions",
           "SlidingCmnOptions", "SpectrogramOptions", "VadOptions", "apply_cmvn_sliding", "compute_vad", "fbank",
           "mfcc", "num_frames", "select_voiced_frames", "spectrogram"]
