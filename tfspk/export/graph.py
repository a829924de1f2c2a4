"""The TF functions of an export: one trained network behind the Kaldi front end as TF ops.

``embed_wav(samples)``: features (:class:`~tfspk.export.tf_features.KaldiFeaturesTF`, no dither) ->
energy VAD on the VAD's MFCCs -> sliding CMN -> voiced frames -> padding to ``min_chunk_size`` ->
network; ``embed_feats(feats, vad)``: CMN -> voiced frames -> padding -> network (``tfspk-extract``
with its defaults); ``features_wav(samples)``: the raw features and VAD, for checks.
"""
from __future__ import annotations

import dataclasses

from tfspk.errors import ToolError
from tfspk.export.tf_features import (KaldiFeaturesTF, min_samples_for_frames, num_frames_formula,
                                      pad_to_min_chunk_tf, select_frames_tf, sliding_cmn_tf, vad_tf)
from tfspk.features.frontend import FrontEnd

EMBEDDING_OUTPUTS = {"a": "embedding_a", "b": "embedding_b"}


@dataclasses.dataclass
class Network:
    """What the export needs of a trained network."""
    model: object          # keras.Model: [B, T, F] -> {"embedding_a", "embedding_b"}
    config: dict           # the experiment's config.yaml
    arch: str
    feat_dim: int
    min_frames: int        # smallest number of input frames the network accepts


def load_network(exp_dir: str) -> Network:
    """The trained network of ``exp_dir`` (:func:`tfspk.nnet.load_trained`: only a finished training)."""
    from tfspk.nnet import load_trained
    model, config, network = load_trained(exp_dir)
    return Network(model, config, network.network_name, int(config["feat_dim"]), int(network.min_frames()))


class ExportGraph:
    """The TF functions of the export around one network (see the module docstring)."""

    def __init__(self, network: Network, front_end: FrontEnd, embedding_layer="a", min_chunk_size=25):
        import tensorflow as tf
        if embedding_layer not in EMBEDDING_OUTPUTS:
            raise ToolError(f"--embedding-layer must be one of {', '.join(EMBEDDING_OUTPUTS)}, got '{embedding_layer}'")
        if min_chunk_size < network.min_frames:
            raise ToolError(f"--min-chunk-size={min_chunk_size} is below the network's minimum of "
                            f"{network.min_frames} frames")
        self.network = network
        self.features = front_end.tensorflow()
        if self.features.dim != network.feat_dim:
            raise ToolError(f"the front end gives {self.features.dim}-dimensional features but the network was "
                            f"trained on dimension {network.feat_dim}")
        self.vad_opts = front_end.vad_options if front_end.vad else None
        self.vad_features = None
        feature_opts = front_end.inference_options()
        apply_cmn, cmn_window = front_end.inference_cmn()
        if self.vad_opts is not None:
            vad_feature_opts = front_end.vad_energy_options()
            self.vad_features = (self.features if vad_feature_opts == feature_opts and not front_end.post
                                 else KaldiFeaturesTF(vad_feature_opts))
            for samples in (1000, 16001, 123457):   # frame counts must agree for every length
                if num_frames_formula(samples, vad_feature_opts.frame) != num_frames_formula(samples, feature_opts.frame):
                    raise ToolError("the VAD's MFCC options and the features' give different numbers of frames "
                                    f"({num_frames_formula(samples, vad_feature_opts.frame)} vs "
                                    f"{num_frames_formula(samples, feature_opts.frame)} for {samples} samples): "
                                    "use --snip-edges=false and the same --frame-shift in both")
            if vad_feature_opts.frame.sample_frequency != feature_opts.frame.sample_frequency:
                raise ToolError("the VAD's MFCC options and the features' have different sample frequencies")
        self.apply_cmn, self.cmn_window, self.min_chunk_size = apply_cmn, cmn_window, min_chunk_size
        self.output = EMBEDDING_OUTPUTS[embedding_layer]
        feat_dim = network.feat_dim
        model = network.model

        def run_network(prepared):
            count = tf.shape(prepared)[0]
            padded = pad_to_min_chunk_tf(prepared, min_chunk_size)
            embedding = model(padded[None], training=False)[self.output][0]
            return {"embedding": tf.identity(embedding, name="embedding"),
                    "num_frames": tf.identity(count, name="num_frames")}

        def prepare(feats, voiced):
            if apply_cmn:
                feats = sliding_cmn_tf(feats, cmn_window=cmn_window, center=True)
            if voiced is not None:
                feats = select_frames_tf(feats, voiced)
            return feats

        def voiced_frames(samples, feats):
            """compute-vad on the VAD's MFCCs. It reads only their column 0, the log energy (--use-energy=true,
            checked), so the VAD's own MFCCs need no spectrum: only their framing and energy options."""
            energy = feats if self.vad_features is self.features else self.vad_features.log_energy(samples)[:, None]
            o = self.vad_opts
            return vad_tf(energy, o.vad_energy_threshold, o.vad_energy_mean_scale, o.vad_proportion_threshold,
                          o.vad_frames_context)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, feat_dim], tf.float32, name="feats"),
                                      tf.TensorSpec([None], tf.float32, name="vad")])
        def embed_feats(feats, vad):
            return run_network(prepare(feats, vad > 0.5))

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.float32, name="samples")])
        def embed_wav(samples):
            feats = self.features(samples)
            voiced = None if self.vad_opts is None else voiced_frames(samples, feats)
            return run_network(prepare(feats, voiced))

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.float32, name="samples")])
        def features_wav(samples):
            """Raw features and VAD of the wav graph (for tests and debugging)."""
            feats = self.features(samples)
            if self.vad_opts is None:
                return {"feats": feats, "vad": tf.ones([tf.shape(feats)[0]], tf.float32)}
            return {"feats": feats, "vad": tf.cast(voiced_frames(samples, feats), tf.float32)}

        self.embed_feats, self.embed_wav, self.features_wav = embed_feats, embed_wav, features_wav

    @property
    def sample_rate(self) -> float:
        return float(self.features.frame.sample_frequency)

    @property
    def min_samples(self) -> int:
        """Fewest samples whose features reach the network's minimum number of frames."""
        return min_samples_for_frames(self.network.min_frames, self.features.frame)
