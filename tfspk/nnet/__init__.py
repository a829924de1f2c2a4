"""tfspk.nnet: speaker-embedding networks, found by name (see docs/nnet.md).

``get_network(name, params).build(feat_dim)`` makes a Keras model returning ``{"embedding_a", "embedding_b"}``;
:func:`network_from_config` reads a config's ``nnet:`` section; :func:`load_trained` an experiment dir.
A new network is one file with a class decorated by :func:`register_network` plus an import line below.
"""
from tfspk.errors import ToolError
from tfspk.nnet.pooling import DEFAULT_VARIANCE_FLOOR, StatisticsPooling
from tfspk.nnet.registry import (DEFAULT_NETWORK, NETWORKS, Network, describe_network, get_network,
                                 network_config, network_from_config, network_names_listing, register_network,
                                 resolve_network_name)
from tfspk.nnet import xvector  # noqa: F401  (registers tdnn, tdnn_kaldi)
from tfspk.nnet import ecapa_tdnn  # noqa: F401  (registers ecapa_tdnn)
from tfspk.nnet import resnet  # noqa: F401  (registers resnet18, resnet34, resnet50)
from tfspk.nnet import rescnn  # noqa: F401  (registers rescnn)
from tfspk.nnet import wespeaker  # noqa: F401  (registers wespeaker_resnet, wespeaker_ecapa_tdnn)
from tfspk.nnet import speechbrain  # noqa: F401  (registers speechbrain_ecapa_tdnn)
from tfspk.nnet.xvector import ARCHITECTURES, LAYER_ORDERS, build_xvector, receptive_field
from tfspk.nnet.saved import load_trained


def check_num_frames(num_frames: int, arch: str = "tdnn", what: str = "input") -> None:
    """Raise ToolError when ``num_frames`` is below the receptive field of ``arch`` (valid convolutions)."""
    needed = get_network(arch).min_frames()
    if num_frames < needed:
        raise ToolError(f"{what} has {num_frames} frames; the '{arch}' network needs at least {needed} "
                        "(its receptive field, as it uses no padding)")


__all__ = ["ARCHITECTURES", "DEFAULT_NETWORK", "DEFAULT_VARIANCE_FLOOR", "LAYER_ORDERS", "NETWORKS", "Network",
           "StatisticsPooling", "build_xvector", "check_num_frames", "describe_network", "get_network",
           "load_trained", "network_config", "network_from_config", "network_names_listing", "receptive_field",
           "register_network", "resolve_network_name"]
