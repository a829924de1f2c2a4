"""Kaldi feature options (``compute-mfcc-feats`` / ``compute-fbank-feats``) and their checks.

Option names, meanings and defaults are Kaldi's (``feature-window.h``, ``mel-computations.h``,
``feature-mfcc.h``, ``feature-fbank.h``); the numbers are computed by kaldi-native-fbank (knf),
a C++ port of the same code. Every option is validated here so that a bad value is a
:class:`ToolError` naming the option, never an exception from inside knf.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from tfspk import cli
from tfspk.errors import ToolError

WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "sine", "blackman")


@dataclass
class FrameOptions:
    """Kaldi ``FrameExtractionOptions`` (times in milliseconds)."""
    sample_frequency: float = 16000.0
    frame_shift: float = 10.0
    frame_length: float = 25.0
    dither: float = 1.0
    preemphasis_coefficient: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    round_to_power_of_two: bool = True
    blackman_coeff: float = 0.42
    snip_edges: bool = True

    @property
    def window_shift_samples(self) -> int:
        """Kaldi ``WindowShift()``: ``int(samp_freq * 0.001 * frame_shift_ms)``."""
        return int(self.sample_frequency * 0.001 * self.frame_shift)

    @property
    def window_size_samples(self) -> int:
        """Kaldi ``WindowSize()``: ``int(samp_freq * 0.001 * frame_length_ms)``."""
        return int(self.sample_frequency * 0.001 * self.frame_length)

    @property
    def padded_window_size(self) -> int:
        """FFT size: the window size rounded up to a power of two (``--round-to-power-of-two``)."""
        size = self.window_size_samples
        if not self.round_to_power_of_two:
            return size
        return 1 << max(0, (size - 1).bit_length())


@dataclass
class MelOptions:
    """Kaldi ``MelBanksOptions``; ``high_freq <= 0`` means an offset from the Nyquist frequency."""
    num_mel_bins: int = 23
    low_freq: float = 20.0
    high_freq: float = 0.0


@dataclass
class MfccOptions:
    """Kaldi ``MfccOptions`` (``compute-mfcc-feats`` defaults)."""
    frame: FrameOptions = field(default_factory=FrameOptions)
    mel: MelOptions = field(default_factory=MelOptions)
    num_ceps: int = 13
    use_energy: bool = True
    energy_floor: float = 0.0
    raw_energy: bool = True
    cepstral_lifter: float = 22.0
    htk_compat: bool = False

    @property
    def dim(self) -> int:
        return self.num_ceps


@dataclass
class FbankOptions:
    """Kaldi ``FbankOptions`` (``compute-fbank-feats`` defaults)."""
    frame: FrameOptions = field(default_factory=FrameOptions)
    mel: MelOptions = field(default_factory=MelOptions)
    use_energy: bool = False
    energy_floor: float = 0.0
    raw_energy: bool = True
    htk_compat: bool = False
    use_log_fbank: bool = True
    use_power: bool = True

    @property
    def dim(self) -> int:
        return self.mel.num_mel_bins + (1 if self.use_energy else 0)


@dataclass
class SpectrogramOptions:
    """Kaldi ``SpectrogramOptions`` (``compute-spectrogram-feats`` defaults)."""
    frame: FrameOptions = field(default_factory=FrameOptions)
    energy_floor: float = 0.0
    raw_energy: bool = True
    return_raw_fft: bool = False

    @property
    def dim(self) -> int:
        size = self.frame.padded_window_size
        return size if self.return_raw_fft else size // 2 + 1


# ----------------------------------------------------------------------------------------------
# command-line options (Kaldi names)
_FRAME_HELP = {
    "sample_frequency": "waveform data sample frequency (must match the audio) [Hz]",
    "frame_shift": "frame shift in milliseconds",
    "frame_length": "frame length in milliseconds",
    "dither": "dithering constant (0.0 means no dither; tfspk seeds it per utterance, see --dither-seed)",
    "preemphasis_coefficient": "coefficient for use in signal preemphasis",
    "remove_dc_offset": "subtract mean from waveform on each frame",
    "window_type": "type of window (" + "|".join(WINDOW_TYPES) + ")",
    "round_to_power_of_two": "if true, round window size to power of two by zero-padding the FFT input",
    "blackman_coeff": "constant coefficient for generalized Blackman window",
    "snip_edges": "if true, end effects are handled by outputting only frames that completely fit in "
                  "the file; if false, the number of frames is round(num_samples / frame_shift) "
                  "and the edges are reflected",
}
_MEL_HELP = {
    "num_mel_bins": "number of triangular mel-frequency bins",
    "low_freq": "low cutoff frequency for mel bins [Hz]",
    "high_freq": "high cutoff frequency for mel bins (if <= 0, offset from Nyquist) [Hz]",
}
_FEATURE_HELP = {
    "num_ceps": "number of cepstra in MFCC computation (including C0)",
    "use_energy": "use energy (not C0) in MFCC computation / add an energy coefficient to fbank",
    "energy_floor": "floor on energy (absolute, not relative) in MFCC computation; only used with "
                    "use-energy=true, and only active if positive",
    "raw_energy": "if true, compute energy before preemphasis and windowing",
    "cepstral_lifter": "constant that controls scaling of MFCCs",
    "htk_compat": "if true, put energy or C0 last and use a factor of sqrt(2) on C0",
    "use_log_fbank": "if true, produce log-filterbank, else produce linear",
    "use_power": "if true, use power, else use magnitude",
    "return_raw_fft": "if true, return the raw FFT (Kaldi's packed layout) instead of the log power spectrum",
}


_HELP = {**_FRAME_HELP, **_MEL_HELP, **_FEATURE_HELP}


def _option_name(attr: str) -> str:
    return "--" + attr.replace("_", "-")


def _leaf_fields(opts):
    """``(holder, field)`` of every option of an options dataclass; nested dataclasses (``frame``, ``mel``)
    are flattened, so each leaf field is one Kaldi option ``--<name>``."""
    for item in dataclasses.fields(opts):
        value = getattr(opts, item.name)
        if dataclasses.is_dataclass(value):
            yield from _leaf_fields(value)
        else:
            yield opts, item


def add_options(parser, opts) -> None:
    """One command-line option per leaf field of ``opts`` (its values are the defaults); argparse's
    destination is the field name. Help: the field's ``doc`` metadata, else Kaldi's text."""
    for holder, item in _leaf_fields(opts):
        default = getattr(holder, item.name)
        text = item.metadata.get("doc") or _HELP.get(item.name, item.name.replace("_", " "))
        name = _option_name(item.name)
        if isinstance(default, bool):
            cli.add_bool(parser, name, default, text)
        else:
            parser.add_argument(name, type=type(default), default=default,
                                help=f"{text} (default: {default:g})" if isinstance(default, float)
                                else f"{text} (default: {default})")


def add_feature_options(parser, kind: str) -> None:
    """Register the options of feature type ``kind`` (Kaldi's of ``compute-<kind>-feats`` for the built-in ones)."""
    from tfspk.features.registry import feature_type
    add_options(parser, feature_type(kind).Options())


def set_options(opts, values: dict):
    """``opts`` with every leaf field found in ``values`` (by field name) set; returns ``opts``."""
    for holder, item in _leaf_fields(opts):
        if item.name in values:
            setattr(holder, item.name, values[item.name])
    return opts


def options_from_args(args, kind: str):
    """Validated options of feature type ``kind`` from parsed arguments (see :func:`add_feature_options`)."""
    from tfspk.features.registry import feature_type
    opts = set_options(feature_type(kind).Options(), vars(args))
    validate(opts)
    return opts


class _OptionParser(cli.KaldiArgumentParser):
    """Parses the options of a Kaldi config file; an error is a ToolError, not an exit."""

    def error(self, message):
        raise ToolError(message)


def read_options_file(path: str, opts, program: str):
    """``opts`` (an options dataclass instance holding the defaults) updated from the Kaldi config file
    ``path`` (``--name=value`` lines, ``#`` comments); ToolError naming the file for an unknown option or
    a bad value. ``program`` names the tool whose options these are (for the message)."""
    parser = _OptionParser(program)
    add_options(parser, opts)
    try:
        args = parser.parse_args(cli.read_config_file(path, parser))
    except ToolError as err:
        message = str(err)
        raise ToolError(message if message.startswith(str(path)) else f"{path}: {message}"
                        + f" (options of {program} expected)") from None
    return set_options(opts, vars(args))


def option_lines(opts) -> list[str]:
    """``opts`` as Kaldi config-file lines ``--name=value`` (every option; booleans true/false)."""
    lines = []
    for holder, item in _leaf_fields(opts):
        value = getattr(holder, item.name)
        text = ("true" if value else "false") if isinstance(value, bool) else (
            repr(value) if isinstance(value, float) else str(value))
        lines.append(f"{_option_name(item.name)}={text}")
    return lines


def options_from_dict(opts, data, where: str):
    """``opts`` updated from a nested mapping as :func:`dataclasses.asdict` writes it; ToolError naming
    ``where`` and the key for unknown keys and values of the wrong type."""
    if not isinstance(data, dict):
        raise ToolError(f"{where}: expected a mapping of options, got {data!r}")
    fields = {item.name: item for item in dataclasses.fields(opts)}
    for key, value in data.items():
        here = f"{where}.{key}"
        if key not in fields:
            raise ToolError(f"{here}: unknown option; valid: {', '.join(fields)}")
        current = getattr(opts, key)
        if dataclasses.is_dataclass(current):
            options_from_dict(current, value, here)
            continue
        kind = type(current)
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ToolError(f"{here}: expected a value of type {kind.__name__}, got {value!r}")
        setattr(opts, key, value)
    return opts


# ----------------------------------------------------------------------------------------------
# validation
def _mel(freq: float) -> float:
    """Kaldi ``MelScale``: 1127 ln(1 + f / 700)."""
    return 1127.0 * math.log(1.0 + freq / 700.0)


def validate(opts) -> None:
    """The checks of the framing (Kaldi ``FrameExtractionOptions``) and of the feature type's own options."""
    from tfspk.features.registry import feature_type_of
    check_frame(opts.frame)
    feature_type_of(opts).check(opts)


def check_frame(frame: FrameOptions) -> None:
    """Kaldi's checks of ``FrameExtractionOptions``."""
    if not frame.sample_frequency > 0:
        raise ToolError(f"--sample-frequency must be positive, got {frame.sample_frequency}")
    if frame.window_shift_samples <= 0:
        raise ToolError(f"--frame-shift={frame.frame_shift} ms is less than one sample at "
                        f"{frame.sample_frequency:g} Hz")
    if frame.window_size_samples < 2:
        raise ToolError(f"--frame-length={frame.frame_length} ms gives fewer than 2 samples at "
                        f"{frame.sample_frequency:g} Hz")
    if frame.dither < 0:
        raise ToolError(f"--dither must be >= 0, got {frame.dither}")
    if not 0.0 <= frame.preemphasis_coefficient <= 1.0:
        raise ToolError(f"--preemphasis-coefficient must be in [0, 1], got {frame.preemphasis_coefficient}")
    if frame.window_type not in WINDOW_TYPES:
        raise ToolError(f"--window-type: invalid window type '{frame.window_type}' "
                        f"(expected one of {', '.join(WINDOW_TYPES)})")


def check_kaldi(opts) -> None:
    """Kaldi's checks of the MFCC, fbank and spectrogram options (``MelBanks``, ``Mfcc`` constructors)."""
    frame = opts.frame
    if getattr(opts, "energy_floor", 0.0) < 0:
        raise ToolError(f"--energy-floor must be >= 0, got {opts.energy_floor}")
    if isinstance(opts, SpectrogramOptions):
        if frame.padded_window_size % 2:
            raise ToolError(f"the FFT size {frame.padded_window_size} (--frame-length={frame.frame_length} ms at "
                            f"{frame.sample_frequency:g} Hz, --round-to-power-of-two=false) must be even, as "
                            "Kaldi's real FFT requires")
        return
    mel = opts.mel
    if mel.num_mel_bins < 3:
        raise ToolError(f"--num-mel-bins must be at least 3, got {mel.num_mel_bins}")
    nyquist = 0.5 * frame.sample_frequency
    high = mel.high_freq if mel.high_freq > 0 else nyquist + mel.high_freq
    if not (0 <= mel.low_freq < nyquist and 0 < high <= nyquist and high > mel.low_freq):
        raise ToolError(f"bad values in options: --low-freq={mel.low_freq:g} and --high-freq={mel.high_freq:g} "
                        f"(effective {high:g}) vs. Nyquist {nyquist:g} Hz: need 0 <= low < high <= Nyquist "
                        "(a high frequency <= 0 is an offset from Nyquist)")
    _check_mel_bins_have_width(frame, mel.num_mel_bins, mel.low_freq, high)
    if isinstance(opts, MfccOptions):
        if opts.num_ceps < 1 or opts.num_ceps > mel.num_mel_bins:
            raise ToolError(f"--num-ceps={opts.num_ceps} must be between 1 and --num-mel-bins={mel.num_mel_bins}")
        if opts.cepstral_lifter < 0:
            raise ToolError(f"--cepstral-lifter must be >= 0, got {opts.cepstral_lifter}")


def _check_mel_bins_have_width(frame: FrameOptions, num_bins: int, low: float, high: float) -> None:
    """Kaldi refuses a mel bin that covers no FFT bin ("num-mel-bins too large")."""
    fft_bins = frame.padded_window_size // 2
    bin_width = frame.sample_frequency / frame.padded_window_size
    mels = [_mel(bin_width * i) for i in range(fft_bins)]
    mel_low, mel_high = _mel(low), _mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    for b in range(num_bins):
        left, right = mel_low + b * delta, mel_low + (b + 2) * delta
        if not any(left < m < right for m in mels):
            raise ToolError(f"mel bin {b} between {left:.1f} and {right:.1f} mel covers no FFT bin: "
                            f"--num-mel-bins={num_bins} is too large for a {frame.padded_window_size}-point "
                            f"FFT between {low:g} and {high:g} Hz")


# ----------------------------------------------------------------------------------------------
# conversion to kaldi-native-fbank
def _knf_frame_options(target, frame: FrameOptions) -> None:
    target.samp_freq = float(frame.sample_frequency)
    target.frame_shift_ms = float(frame.frame_shift)
    target.frame_length_ms = float(frame.frame_length)
    target.dither = 0.0  # tfspk dithers the waveform itself, reproducibly (see tfspk.features.mfcc)
    target.preemph_coeff = float(frame.preemphasis_coefficient)
    target.remove_dc_offset = bool(frame.remove_dc_offset)
    target.window_type = frame.window_type
    target.round_to_power_of_two = bool(frame.round_to_power_of_two)
    target.blackman_coeff = float(frame.blackman_coeff)
    target.snip_edges = bool(frame.snip_edges)


def _knf_mel_options(target, mel: MelOptions) -> None:
    target.num_bins = int(mel.num_mel_bins)
    target.low_freq = float(mel.low_freq)
    target.high_freq = float(mel.high_freq)


def to_knf(opts):
    """The kaldi-native-fbank options object for ``opts`` (dither always 0 inside knf)."""
    import kaldi_native_fbank as knf
    if isinstance(opts, MfccOptions):
        target = knf.MfccOptions()
        target.num_ceps = int(opts.num_ceps)
        target.cepstral_lifter = float(opts.cepstral_lifter)
    else:
        target = knf.FbankOptions()
        target.use_log_fbank = bool(opts.use_log_fbank)
        target.use_power = bool(opts.use_power)
    target.use_energy = bool(opts.use_energy)
    target.energy_floor = float(opts.energy_floor)
    target.raw_energy = bool(opts.raw_energy)
    target.htk_compat = bool(opts.htk_compat)
    _knf_frame_options(target.frame_opts, opts.frame)
    _knf_mel_options(target.mel_opts, opts.mel)
    return target
