"""tfspk.nnet's registry: networks found by name, config sections old and new, a toy network end to end."""
import dataclasses
import os

import keras
import numpy as np
import pytest
import yaml

from test_train import make_features
from tfspk import nnet
from tfspk.errors import ToolError
from tfspk.params import param


@nnet.register_network("toy_mean", "toy")
class ToyMean(nnet.Network):
    """Per-frame affine layer, mean over time, two affine layers: embedding_a, embedding_b."""

    @dataclasses.dataclass
    class Params:
        hidden: int = param(6, "frame layer width")
        embedding_dim: int = param(4, "embedding width")

    def min_frames(self):
        return 1

    def embedding_dim(self):
        return self.params.embedding_dim

    def build(self, feat_dim):
        feats = keras.Input((None, feat_dim))
        x = keras.layers.Dense(self.params.hidden, activation="relu")(feats)
        x = keras.layers.GlobalAveragePooling1D()(x)
        a = keras.layers.Dense(self.params.embedding_dim, name="toy_a")(x)
        b = keras.layers.Dense(self.params.embedding_dim, name="toy_b")(keras.layers.ReLU()(a))
        return keras.Model(feats, {"embedding_a": a, "embedding_b": b})


def test_unknown_network_lists_the_valid_ones():
    with pytest.raises(ToolError, match=r"unknown network 'resnet9'; valid networks: .*tdnn, tdnn_kaldi"):
        nnet.get_network("resnet9")
    with pytest.raises(ToolError, match=r"unknown network 'nope'; valid networks:.*toy_mean \(alias toy\)"):
        nnet.network_from_config({"name": "nope"})
    assert nnet.resolve_network_name("TDNN-Kaldi") == "tdnn_kaldi"


def test_nnet_section_is_name_and_params_and_the_old_flat_form_is_refused_naming_the_new():
    section = {"name": "tdnn_kaldi", "params": {"frame_dim": 16, "pooling_dim": 24, "embedding_dim": 8}}
    network = nnet.network_from_config(section)
    assert nnet.network_config(network)["params"]["frame_dim"] == 16 and network.min_frames() == 15
    assert nnet.network_from_config(nnet.network_config(network)).params == network.params
    assert nnet.network_config(nnet.network_from_config(None))["name"] == "tdnn"
    # the flat form of older configs: parameters next to the name, 'arch' for the name
    flat = {"arch": "tdnn_kaldi", "frame_dim": 16, "pooling_dim": 24, "embedding_dim": 8}
    with pytest.raises(ToolError, match=r"config key 'nnet.arch' is the old spelling of nnet.name: write nnet: "
                                        r"\{name: tdnn_kaldi, params: \{frame_dim: \.\.\.\}\}"):
        nnet.network_from_config(flat)
    with pytest.raises(ToolError, match=r"config key 'nnet.frame_dim': the network's parameters go under nnet.params "
                                        r"\(nnet: \{name: tdnn, params: \{frame_dim: 16\}\}; --set "
                                        r"nnet.params.frame_dim=16\)"):
        nnet.network_from_config({"name": "tdnn", "frame_dim": 16})
    with pytest.raises(ToolError, match=r"unknown config key 'nnet.widths'; valid keys in nnet: name, params"):
        nnet.network_from_config({"name": "tdnn", "widths": 3})
    for value in (0, 0.01):
        with pytest.raises(ToolError, match=r"'nnet.weight_decay' is no longer supported: set optimizer.weight_decay"):
            nnet.network_from_config({"name": "tdnn", "weight_decay": value})
    with pytest.raises(ToolError, match=r"network 'tdnn': unknown parameter 'width'; valid parameters: frame_dim"):
        nnet.network_from_config({"name": "tdnn", "params": {"width": 3}})
    with pytest.raises(ToolError, match=r"network 'tdnn': parameter 'layer_order' must be one of bn_relu, relu_bn"):
        nnet.network_from_config({"name": "tdnn", "params": {"layer_order": "bn"}})
    with pytest.raises(ToolError, match=r"config key 'nnet.params': expected a mapping of network parameters"):
        nnet.network_from_config({"name": "tdnn", "params": [3]})


def test_registered_tdnn_builds_what_build_xvector_builds():
    network = nnet.get_network("tdnn", {"frame_dim": 8, "pooling_dim": 12, "embedding_dim": 6})
    keras.utils.set_random_seed(1)
    model = network.build(5)
    keras.utils.set_random_seed(1)
    reference = nnet.build_xvector("tdnn", 5, frame_dim=8, pooling_dim=12, embedding_dim=6)
    feats = np.random.default_rng(0).normal(size=(2, 20, 5)).astype(np.float32)
    for key in ("embedding_a", "embedding_b"):
        np.testing.assert_array_equal(model(feats)[key], reference(feats)[key])
    assert network.embedding_dim() == 6 and network.min_frames() == 15


def test_print_config_lists_networks_and_their_params():
    from tfspk.train import components, config as config_mod
    text = config_mod.commented_default_config(components.parameter_docs())
    assert "networks and their params" in text and "tdnn_kaldi: frame_dim=512" in text
    assert "toy_mean: hidden=6, embedding_dim=4" in text


def test_a_network_registered_elsewhere_trains_and_extracts(tmp_path):
    """The issue's test: a new network needs no edit anywhere else to be trained and extracted."""
    from tfspk.extract import extract_to_archive, load_extractor
    from tfspk.io.ark import read_rspecifier
    from tfspk.train import build_config, train
    data = make_features(str(tmp_path / "data"), num_speakers=4, utts_per_speaker=4, dim=5)
    config = build_config(None, ["nnet={name: toy, params: {hidden: 8}}", "data.speakers_per_batch=4",
                                 "data.min_frames=20", "data.max_frames=30", "valid.num_utts=4", "valid.frames=20",
                                 "schedule.steps_per_epoch=3", "schedule.num_epochs=2", "log_every=3"])
    exp = tmp_path / "exp"
    result = train(data, str(exp), config, stream=open(os.devnull, "w"))
    assert len(result.epochs) == 2 and all(np.isfinite(e.loss) for e in result.epochs)
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["nnet"] == {"name": "toy_mean", "params": {"hidden": 8, "embedding_dim": 4}}
    extractor = load_extractor(str(exp))
    out = f"ark,t:{tmp_path}/xvectors.txt"
    assert extract_to_archive(extractor, f"scp:{data}/feats.scp", None, out) == 16
    vectors = dict(read_rspecifier(f"ark:{tmp_path}/xvectors.txt"))
    assert len(vectors) == 16 and all(v.shape == (4,) for v in vectors.values())


def test_parameters_are_parsed_once_and_passed_down_typed(monkeypatch):
    """components.resolve parses the network, loss and aux parameters; the builders get the typed
    Params and parse nothing again (one parameter system, resolved once)."""
    from tfspk import params as params_mod
    from tfspk.train import components, config as config_mod
    config = components.resolve(config_mod.build_config(None, [
        "loss.name=amsoftmax", "loss.params.margin=0.3", "aux=[{name: ring}]", "nnet.name=tdnn",
        "nnet.params.frame_dim=16", "nnet.params.pooling_dim=24", "nnet.params.embedding_dim=8"]))
    assert config.loss.params["m3"] == 0.3 and config.loss.typed_params.m3 == 0.3
    calls = []
    original = params_mod._coerce
    monkeypatch.setattr(params_mod, "_coerce", lambda *a: calls.append(a) or original(*a))
    network = components.get_network(config)
    head = components.build_head(config, 5, 8)
    (aux,) = components.build_auxes(config)
    assert calls == []
    assert network.params is config.nnet.typed_params and head.params is config.loss.typed_params
    assert aux.params is config.aux[0].typed_params
