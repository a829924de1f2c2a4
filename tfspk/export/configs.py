"""The calibration model an export carries (the front end comes from the experiment's features.yaml,
:mod:`tfspk.features.frontend`)."""
from __future__ import annotations

from tfspk.errors import ToolError


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
