"""tfspk.nnet: x-vector networks (see docs/nnet.md)."""
from tfspk.errors import ToolError
from tfspk.nnet.xvector import (ARCHITECTURES, DEFAULT_VARIANCE_FLOOR, LAYER_ORDERS, StatisticsPooling,
                                build_xvector, receptive_field)


def check_num_frames(num_frames: int, arch: str = "tdnn", what: str = "input") -> None:
    """Raise ToolError when ``num_frames`` is below the receptive field of ``arch`` (valid convolutions)."""
    needed = receptive_field(arch)
    if num_frames < needed:
        raise ToolError(f"{what} has {num_frames} frames; the '{arch}' network needs at least {needed} "
                        "(its receptive field, as it uses no padding)")


__all__ = ["ARCHITECTURES", "DEFAULT_VARIANCE_FLOOR", "LAYER_ORDERS", "StatisticsPooling", "build_xvector",
           "check_num_frames", "receptive_field"]
from tfspk.nnet import ecapa_tdnn  # noqa: F401  (registers ecapa_tdnn)
from tfspk.nnet import resnet  # noqa: F401  (registers resnet18, resnet34, resnet50)
from tfspk.nnet import rescnn  # noqa: F401  (registers rescnn)
