"""tfspk.train: the x-vector trainer (config, optimizer and LR policy, checkpoints, tf.distribute).

``train(data_dir, exp_dir, config)`` runs an experiment; ``load_for_inference(exp_dir)`` gives the
trained network back for extraction. See docs/training.md.
"""
from tfspk.train.config import TrainConfig, build_config, commented_default_config
from tfspk.train.inference import load_for_inference


def train(*args, **kwargs):
    """See :func:`tfspk.train.run.train` (imported lazily: it loads TensorFlow)."""
    from tfspk.train import run
    return run.train(*args, **kwargs)


__all__ = ["TrainConfig", "build_config", "commented_default_config", "load_for_inference", "train"]
