"""Every variable of every registered network is in the trainer's checkpoint.

The trainer resumes from ``tf.train.Checkpoint(model=...)``, which finds variables through the tracked
attributes of Keras layers. A layer that keeps sub-layers where the checkpoint does not look (ECAPA-TDNN's
SE-Res2Blocks kept their Conv-ReLU-BN stacks in lists) leaves their non-trainable state out: the kernels
still came back through the optimizer, the batch-norm moving statistics restarted from 0 / 1 on resume.
The check here is the checkpoint itself: save a network whose every variable holds random values, restore
into a second instance, compare variable by variable.
"""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tfspk.nnet.registry import NETWORKS, get_network  # noqa: E402

# Small widths (the same layers as full size; the optional layers on); a network not listed builds at its
# defaults on 80-dim features.
SMALL = {
    "tdnn": ({"frame_dim": 16, "pooling_dim": 24, "embedding_dim": 8}, 16),
    "tdnn_kaldi": ({"frame_dim": 16, "pooling_dim": 24, "embedding_dim": 8}, 16),
    "ecapa_tdnn": ({"channels": 16, "scale": 4, "se_channels": 8, "mfa_channels": 24, "attention_channels": 8,
                    "embedding_dim": 8}, 16),
    "resnet18": ({"base_width": 4, "embedding_dim": 8}, 16),
    "resnet34": ({"base_width": 4, "embedding_dim": 8}, 16),
    "resnet50": ({"base_width": 2, "embedding_dim": 8}, 16),
    "rescnn": ({"base_channels": 4, "embedding_dim": 8}, 16),
    "speechbrain_ecapa_tdnn": ({"channels": 16, "mfa_channels": 48, "embedding_dim": 8, "attention_channels": 8,
                                "se_channels": 8}, 16),
    "wespeaker_ecapa_tdnn": ({"channels": 16, "mfa_channels": 48, "embedding_dim": 8, "attention_channels": 8,
                              "se_channels": 8, "emb_bn": True}, 16),
    "wespeaker_resnet": ({"base_width": 4, "embedding_dim": 8, "two_emb_layer": True}, 16),
}


# The package's networks (other tests register toy ones in the same process).
PACKAGE_NETWORKS = sorted(name for name, cls in NETWORKS.items() if cls.__module__.startswith("tfspk."))


def _build(name):
    params, feat_dim = SMALL.get(name, (None, 80))
    return get_network(name, params).build(feat_dim)


def test_the_table_gives_every_network_small_widths():
    assert set(SMALL) == set(PACKAGE_NETWORKS), "a new network: give it small widths here"


@pytest.mark.parametrize("name", PACKAGE_NETWORKS)
def test_every_variable_of_the_network_comes_back_from_a_checkpoint(name, tmp_path):
    rng = np.random.default_rng(0)
    saved = _build(name)
    for variable in saved.variables:
        variable.assign(rng.standard_normal(variable.shape).astype(np.dtype(variable.dtype)))
    path = tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
    restored = _build(name)
    tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
    assert len(restored.variables) == len(saved.variables)
    missing = [a.path for a, b in zip(saved.variables, restored.variables) if not np.array_equal(a.numpy(), b.numpy())]
    assert not missing, f"{name}: {len(missing)} of {len(saved.variables)} variables not restored, e.g. {missing[:3]}"
