"""The built-in feature types: Kaldi's ``compute-mfcc-feats``, ``compute-fbank-feats`` and
``compute-spectrogram-feats`` (numpy side: kaldi-native-fbank / :mod:`tfspk.features.spectrogram`;
TensorFlow side: :class:`tfspk.features.tf_kaldi.KaldiFeaturesTF`)."""
from __future__ import annotations

import importlib

from tfspk.features.options import FbankOptions, MfccOptions, SpectrogramOptions, check_kaldi
from tfspk.features.registry import FEATURE_TYPES, FeatureType


class _KaldiFeatureType(FeatureType):
    #: the numpy extractor's class in :mod:`tfspk.features.mfcc`
    computer = "KnfComputer"

    @classmethod
    def check(cls, opts) -> None:
        check_kaldi(opts)

    @classmethod
    def compute(cls, opts):
        # by module path: the package attribute ``tfspk.features.mfcc`` is the function of that name
        module = importlib.import_module("tfspk.features.mfcc")
        return getattr(module, cls.computer)(opts)

    @classmethod
    def tensorflow(cls, opts):
        from tfspk.features.tf_kaldi import KaldiFeaturesTF
        return KaldiFeaturesTF(opts)


@FEATURE_TYPES.register("mfcc")
class Mfcc(_KaldiFeatureType):
    """Kaldi MFCC (``compute-mfcc-feats``)."""
    Options = MfccOptions


@FEATURE_TYPES.register("fbank")
class Fbank(_KaldiFeatureType):
    """Kaldi log mel filterbank (``compute-fbank-feats``)."""
    Options = FbankOptions


@FEATURE_TYPES.register("spectrogram")
class Spectrogram(_KaldiFeatureType):
    """Kaldi log power spectrogram (``compute-spectrogram-feats``)."""
    Options = SpectrogramOptions
    computer = "SpectrogramComputer"
