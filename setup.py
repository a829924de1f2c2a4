"""Package metadata for tfspk.

Console scripts are discovered from tfspk/bin/: every module ``tfspk/bin/foo_bar.py``
with a ``main()`` becomes the command ``tfspk-foo-bar``, so adding a tool never needs
an edit here (re-run ``pip install -e .`` to create the new command).
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def console_scripts():
    bin_dir = HERE / "tfspk" / "bin"
    return [
        f"tfspk-{module.stem.replace('_', '-')} = tfspk.bin.{module.stem}:main"
        for module in sorted(bin_dir.glob("*.py"))
        if not module.stem.startswith("_")
    ]


# [plot]: DET and calibration plots (tfspk-score-report --det-plot, --calibration-plot).
# [export]: tfspk-export's ONNX model (tf2onnx) and the onnx backend of tfspk-embed / tfspk.Embedder.
# [tensorboard]: the viewer for <exp>/tb (training writes the event files without it).
# [demo]: what egs/demo/v2 needs beyond the package: its plots, and simulated room impulse responses
#   for the augmentation set of --aug online (local/make_aug_set.sh).
# [test]: the test suite: pytest-xdist (tools/test.sh runs two workers), kaldi-io and kaldi-native-io
#   (independent Kaldi readers the tests compare with), scikit-learn (independent LDA and isotonic
#   regression), and every other extra, since the suite covers all of them.
EXTRAS = {
    "plot": ["matplotlib>=3.7"],
    "export": ["tf2onnx>=1.16", "onnxruntime>=1.17"],
    "tensorboard": ["tensorboard>=2.16"],
}
EXTRAS["demo"] = EXTRAS["plot"] + EXTRAS["export"] + ["pyroomacoustics>=0.7"]
EXTRAS["test"] = sorted(set(EXTRAS["demo"]) | {"pytest>=7", "pytest-xdist>=3.8", "kaldi-io>=0.9.8",
                                                "kaldi-native-io>=1.20", "scikit-learn>=1.3"})


def version():
    for line in (HERE / "tfspk" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip('"')
    raise RuntimeError("tfspk/__init__.py has no __version__")


setup(
    name="tfspk",
    version=version(),
    description="Kaldi-style recipes for speaker verification with TensorFlow and margin-based softmax losses",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["tfspk", "tfspk.*"]),
    # What the package imports at run time; everything else is an extra (tools/setup_env.sh installs them).
    install_requires=[
        "tensorflow>=2.16",
        "kaldi-native-fbank>=1.20",
        "numpy>=1.24",
        "scipy>=1.10",
        "soundfile>=0.12",
        "pyyaml>=6.0",
        "h5py>=3.8",   # checkpoint averaging reads the weight files (Keras needs it too)
        # TensorFlow's NumPy dtypes (bfloat16, ...): ml_dtypes 0.7.0's extension takes about 1 s to initialise,
        # 0.6.0's 0.1 s, and every TensorFlow tool pays it at start (tfspk-nnet-info: 4.2 s of CPU against 5.3 s)
        "ml_dtypes>=0.5.1,<0.7",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": console_scripts()},
)
