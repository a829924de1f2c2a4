"""The configuration files an export reads: Kaldi feature and VAD configs, and the calibration model.

Each reader returns the option dataclass of the toolkit (:mod:`tfspk.features.options`,
:class:`~tfspk.features.vad.VadOptions`) or a plain dict, and raises a ToolError naming the file for
an unknown option or a bad value.
"""
from __future__ import annotations

import dataclasses

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.features.options import FEATURE_TYPES, add_feature_options, options_from_args
from tfspk.features.vad import VadOptions


def read_calibration(path: str) -> dict:
    """The linear calibration ``llr = a * score + b`` of a ``tfspk-calibrate`` model file
    (:class:`tfspk.backend.calibration.LinearCalibration`, [Brummer2006]); one with quality measures is
    refused, since an exported model sees one pair of recordings, not the trial lists it was trained on."""
    from tfspk.backend.calibration import LinearCalibration
    model = LinearCalibration.read(path)
    if model.quality_weights:
        raise ToolError(f"{path}: the calibration uses quality measures ({', '.join(model.quality_weights)}); "
                        "export takes a calibration trained without them (tfspk-calibrate without "
                        "--durations/--vectors)")
    return {"type": "linear", "formula": "llr = a * score + b", "a": model.scale, "b": model.offset,
            "target_prior": model.target_prior}



class _OptionParser(cli.KaldiArgumentParser):
    """Parses a Kaldi config file's options; an unknown option is a ToolError, not an exit."""

    def error(self, message):
        raise ToolError(message)


def read_feature_config(path: str, kind: str):
    """MfccOptions / FbankOptions / SpectrogramOptions from a Kaldi config file (``conf/mfcc.conf``)."""
    if kind not in FEATURE_TYPES:
        raise ToolError(f"--feature-type must be one of {', '.join(FEATURE_TYPES)}, got '{kind}'")
    lines = cli.read_config_file(path)
    parser = _OptionParser(f"{kind} config")
    add_feature_options(parser, kind)
    try:
        args = parser.parse_args(lines)
    except ToolError as err:
        raise ToolError(f"{path}: {err} (options of compute-{kind}-feats expected)") from None
    opts = options_from_args(args, kind)
    opts.frame.dither = 0.0   # inference: no dither
    return opts


def read_vad_config(path: str) -> VadOptions:
    """VadOptions from a Kaldi config file (``conf/vad.conf``)."""
    parser = _OptionParser("vad config")
    defaults = VadOptions()
    for item in dataclasses.fields(VadOptions):
        parser.add_argument("--" + item.name.replace("_", "-"), type=type(getattr(defaults, item.name)),
                            default=getattr(defaults, item.name))
    try:
        args = parser.parse_args(cli.read_config_file(path))
    except ToolError as err:
        raise ToolError(f"{path}: {err} (options of compute-vad expected)") from None
    opts = VadOptions(**{item.name: getattr(args, item.name) for item in dataclasses.fields(VadOptions)})
    opts.validate()
    return opts
