"""tfspk.export: self-contained exported models (SavedModel, TFLite, ONNX) and their use (docs/export.md).

``tfspk.export.embedder`` (Embedder, tfspk-embed) needs only TensorFlow / onnxruntime and the export dir;
``tfspk.export.export`` (tfspk-export) reads the experiment dir through the training code.
"""


def __getattr__(name):
    # lazily, so that importing tfspk.export stays light
    if name == "Embedder":
        from tfspk.export.embedder import Embedder
        return Embedder
    raise AttributeError(name)
