"""What a network is, layer by layer (``tfspk-nnet-info``, like Kaldi's ``nnet3-info``).

For a network and a feature dimension: each top-level Keras layer's name, type, output shape (``None``
for the batch and the frame axes, which vary) and number of parameters; the total; the network's
``min_frames()``, ``embedding_dim()`` and the feature dimension. The source is an experiment dir
(``<exp>/config.yaml``, written by tfspk-train, which holds ``feat_dim``) or a YAML config with an
``nnet:`` section (then the feature dimension comes from its ``feat_dim`` key or the caller).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from tfspk.errors import ToolError
from tfspk.nnet.registry import Network
from tfspk.nnet.saved import network_of_experiment, read_experiment_config


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: str
    num_params: int


@dataclass
class NetworkInfo:
    network: Network
    feat_dim: int
    layers: list
    total_params: int
    trainable_params: int
    source: str = ""

    def format(self) -> str:
        """The nnet3-info style text: a summary block then one line per layer."""
        lines = [f"source: {self.source}" if self.source else None,
                 f"network: {self.network.network_name}",
                 f"feature-dim: {self.feat_dim}",
                 f"min-frames: {self.network.min_frames()}",
                 f"embedding-dim: {self.network.embedding_dim()}",
                 f"num-parameters: {self.total_params}",
                 f"num-trainable-parameters: {self.trainable_params}",
                 f"num-layers: {len(self.layers)}"]
        lines = [line for line in lines if line is not None]
        width = max([len(row.name) for row in self.layers] + [5])
        kind_width = max([len(row.kind) for row in self.layers] + [4])
        shape_width = max([len(row.output_shape) for row in self.layers] + [12])
        lines.append(f"{'layer':<{width}}  {'type':<{kind_width}}  {'output-shape':<{shape_width}}  params")
        lines += [f"{row.name:<{width}}  {row.kind:<{kind_width}}  {row.output_shape:<{shape_width}}  {row.num_params}"
                  for row in self.layers]
        return "\n".join(lines)


def _shape_text(output) -> str:
    if isinstance(output, dict):
        return ", ".join(f"{key}: {_shape_text(value)}" for key, value in sorted(output.items()))
    if isinstance(output, (list, tuple)):
        return ", ".join(_shape_text(value) for value in output)
    shape = getattr(output, "shape", None)
    return "[" + ", ".join("None" if d is None else str(int(d)) for d in shape) + "]" if shape is not None else "?"


def network_info(network: Network, feat_dim: int, source: str = "") -> NetworkInfo:
    """Build ``network`` for ``feat_dim`` (random weights: only shapes and counts are read) and describe it."""
    network.check_feat_dim(int(feat_dim))
    model = network.build(int(feat_dim))
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            shape = _shape_text(layer.output)
        except (AttributeError, ValueError):  # a layer called more than once has no single output
            shape = "?"
        rows.append(LayerRow(layer.name, type(layer).__name__, shape, int(layer.count_params())))
    trainable = sum(int(v.numpy().size) for v in model.trainable_weights)
    return NetworkInfo(network, int(feat_dim), rows, int(model.count_params()), trainable, source)


def info_from_path(path: str, feat_dim: int | None = None) -> NetworkInfo:
    """:class:`NetworkInfo` of an experiment dir or a YAML config (``feat_dim`` overrides/supplies the dimension)."""
    config_path = os.path.join(path, "config.yaml") if os.path.isdir(path) else path
    if os.path.isdir(path) and not os.path.isfile(config_path):
        raise ToolError(f"{path} is a directory without config.yaml (not an experiment dir of tfspk-train)")
    config = read_experiment_config(config_path)
    if "nnet" not in config:
        raise ToolError(f"{config_path} has no 'nnet' key (the network section: {{name: NAME, params: {{...}}}})")
    network = network_of_experiment(config, config_path)
    if feat_dim is None:
        if "feat_dim" not in config:
            raise ToolError(f"{config_path} has no 'feat_dim' key (only experiment dirs record it); "
                            "give the feature dimension (--feat-dim)")
        feat_dim = config["feat_dim"]
    if not isinstance(feat_dim, int) or isinstance(feat_dim, bool) or feat_dim < 1:
        raise ToolError(f"feature dimension must be a positive integer, got {feat_dim!r}")
    return network_info(network, feat_dim, source=config_path)
