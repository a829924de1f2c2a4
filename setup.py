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
    install_requires=[
        "tensorflow>=2.16",
        "kaldi-io>=0.9.8",
        "kaldi-native-fbank>=1.20",
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.3",
        "soundfile>=0.12",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "pyyaml>=6.0",
        # simulated room impulse responses for the demo's augmentation set (egs/demo/v2/local/make_aug_set.sh)
        "pyroomacoustics>=0.7",
    ],
    # kaldi-native-io wraps Kaldi's own C++ table code: tests use it to check byte-exactness.
    # [export]: tfspk-export's ONNX model (tf2onnx) and tfspk-embed / tfspk.Embedder's onnx backend.
    # pytest-xdist: tools/test.sh runs the suite on two worker processes (-n 2).
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3.8", "kaldi-native-io>=1.20", "tf2onnx>=1.16",
                             "onnxruntime>=1.17"],
                    "export": ["tf2onnx>=1.16", "onnxruntime>=1.17"]},
    entry_points={"console_scripts": console_scripts()},
)
