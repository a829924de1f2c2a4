"""Kaldi nnet3 x-vector fixtures without Kaldi: a writer of nnet3 raw files (text and binary) and an
independent numpy forward pass of the nnet3 graph, both written from Kaldi's own definitions
(nnet-nnet.cc Nnet::Write, nnet-simple-component.cc, nnet-normalize-component.cc,
nnet-general-component.cc, base/io-funcs.cc, matrix/kaldi-matrix.cc), not from tfspk's network.

The model is the egs/voxceleb/v2 xconfig (local/nnet3/xvector/tuning/run_xvector_1a.sh) with small
widths: relu-batchnorm-layer tdnn1..tdnn5 on Append(-2..2), Append(-2,0,2), Append(-3,0,3), {0}, {0};
stats-layer mean+stddev(0:1:1:10000); relu-batchnorm-layer tdnn6 (input stats) and tdnn7; output-layer
with log-softmax. Random weights; batch-norm statistics as Kaldi stores them (StatsMean, StatsVar:
count-normalised), with a different epsilon and target-rms per layer so that both are exercised.

Run once to (re)write tests/fixtures/kaldi_nnet3/ (the files are committed):
    .venv/bin/python tests/kaldi_nnet3_reference.py tests/fixtures/kaldi_nnet3
"""
from __future__ import annotations

import os
import struct
import sys

import numpy as np

FEAT_DIM, FRAME_DIM, POOL_DIM, EMB_DIM, NUM_TARGETS = 30, 24, 40, 16, 10
CONTEXTS = {"tdnn1": (-2, -1, 0, 1, 2), "tdnn2": (-2, 0, 2), "tdnn3": (-3, 0, 3), "tdnn4": (0,), "tdnn5": (0,)}
VARIANCE_FLOOR = 1e-10
SEED = 20261207


# ---------------------------------------------------------------------------------------------- the model
def make_model(seed: int = SEED) -> dict:
    """Weights of every component: {name: {field: value}} (float32 arrays, as Kaldi's BaseFloat)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    model = {}
    dims = {"input": FEAT_DIM}
    previous = "input"
    layers = [("tdnn1", FRAME_DIM), ("tdnn2", FRAME_DIM), ("tdnn3", FRAME_DIM), ("tdnn4", FRAME_DIM),
              ("tdnn5", POOL_DIM)]
    for index, (name, width) in enumerate(layers):
        in_dim = dims[previous] * len(CONTEXTS[name])
        model[f"{name}.affine"] = {"LinearParams": (rng.normal(0, 1, (width, in_dim)) / np.sqrt(in_dim)).astype(f32),
                                   "BiasParams": rng.normal(0, 0.1, width).astype(f32)}
        model[f"{name}.batchnorm"] = _batchnorm(rng, width, epsilon=1e-3, target_rms=1.0 + 0.1 * index)
        dims[f"{name}.batchnorm"] = width
        previous = f"{name}.batchnorm"
    stats_dim = 2 * POOL_DIM
    model["tdnn6.affine"] = {"LinearParams": (rng.normal(0, 1, (EMB_DIM, stats_dim)) / np.sqrt(stats_dim)).astype(f32),
                             "BiasParams": rng.normal(0, 0.1, EMB_DIM).astype(f32)}
    model["tdnn6.batchnorm"] = _batchnorm(rng, EMB_DIM, epsilon=1e-3, target_rms=1.0)
    model["tdnn7.affine"] = {"LinearParams": (rng.normal(0, 1, (EMB_DIM, EMB_DIM)) / np.sqrt(EMB_DIM)).astype(f32),
                             "BiasParams": rng.normal(0, 0.1, EMB_DIM).astype(f32)}
    # a layer epsilon other than the first layer's: the importer folds the difference into the variance
    model["tdnn7.batchnorm"] = _batchnorm(rng, EMB_DIM, epsilon=2e-3, target_rms=1.0)
    model["output.affine"] = {"LinearParams": rng.normal(0, 0.3, (NUM_TARGETS, EMB_DIM)).astype(f32),
                              "BiasParams": np.zeros(NUM_TARGETS, f32)}
    return model


def _batchnorm(rng, dim, epsilon, target_rms):
    # Positive variances of the scale the ReLU outputs have; means of the same order.
    return {"Epsilon": epsilon, "TargetRms": target_rms, "Count": 12345.0,
            "StatsMean": np.abs(rng.normal(0.5, 0.3, dim)).astype(np.float32),
            "StatsVar": rng.uniform(0.2, 1.5, dim).astype(np.float32)}


# ---------------------------------------------------------------------------------------------- numpy forward
def forward(model: dict, feats: np.ndarray) -> dict:
    """Kaldi's computation of the x-vector for one chunk (nnet3-xvector-compute, output at t = 0).

    Frame layers are computed at every t whose whole input context exists (nnet3 computes only
    computable indexes: no padding); the stats pooling at t = 0 with left context 0 and right context
    10000 sums StatisticsExtraction's [1, x, x^2] over the tdnn5 frames that exist; then
    mean = sum x / count, var = max(sum x^2 / count - mean^2, floor), [mean, sqrt(var)].
    Returns {"tdnn6.affine": x-vector, "tdnn7.batchnorm": ..., "output": log-softmax}.
    """
    x = np.asarray(feats, np.float64)
    times = np.arange(len(x))           # the t index of each row
    for name in ("tdnn1", "tdnn2", "tdnn3", "tdnn4", "tdnn5"):
        context = CONTEXTS[name]
        valid = [k for k, t in enumerate(times) if all(t + o in set(times) for o in context)]
        position = {t: k for k, t in enumerate(times)}
        spliced = np.stack([np.concatenate([x[position[times[k] + o]] for o in context]) for k in valid])
        x = _affine(model[f"{name}.affine"], spliced)
        x = np.maximum(x, 0.0)                       # RectifiedLinearComponent
        x = _batchnorm_test(model[f"{name}.batchnorm"], x)
        times = times[valid]
    # StatisticsExtractionComponent (periods 1): per frame [1, x, x^2]
    stats = np.concatenate([np.ones((len(x), 1)), x, x * x], axis=1)
    # StatisticsPoolingComponent at t = 0, frames t in [0, 10000] that exist
    window = (times >= 0) & (times <= 10000)
    pooled = stats[window].sum(axis=0)
    count = pooled[0]
    mean = pooled[1:1 + POOL_DIM] / count
    variance = np.maximum(pooled[1 + POOL_DIM:] / count - mean * mean, VARIANCE_FLOOR)
    segment = np.concatenate([mean, np.sqrt(variance)])
    xvector = _affine(model["tdnn6.affine"], segment[None])[0]
    h = _batchnorm_test(model["tdnn6.batchnorm"], np.maximum(xvector, 0.0)[None])
    h = _batchnorm_test(model["tdnn7.batchnorm"], np.maximum(_affine(model["tdnn7.affine"], h), 0.0))
    logits = _affine(model["output.affine"], h)[0]
    log_softmax = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
    return {"tdnn6.affine": xvector, "tdnn7.batchnorm": h[0], "output": log_softmax}


def _affine(component, x):
    return x @ component["LinearParams"].astype(np.float64).T + component["BiasParams"].astype(np.float64)


def _batchnorm_test(component, x):
    """BatchNormComponent::ComputeDerived: scale = target_rms (max(var, 0) + eps)^-1/2, offset = -mean scale."""
    mean = component["StatsMean"].astype(np.float64)
    var = np.maximum(component["StatsVar"].astype(np.float64), 0.0)
    scale = component["TargetRms"] * (var + component["Epsilon"]) ** -0.5
    return x * scale - mean * scale


# ---------------------------------------------------------------------------------------------- writer
def config_lines() -> list:
    """Nnet::GetConfigLines (include_dim false) of the xconfig's network."""
    def append(node, context):
        terms = [node if o == 0 else f"Offset({node}, {o})" for o in context]
        return terms[0] if len(terms) == 1 else f"Append({', '.join(terms)})"
    lines = [f"input-node name=input dim={FEAT_DIM}"]
    previous = "input"
    for name in ("tdnn1", "tdnn2", "tdnn3", "tdnn4", "tdnn5"):
        lines.append(f"component-node name={name}.affine component={name}.affine input={append(previous, CONTEXTS[name])}")
        lines.append(f"component-node name={name}.relu component={name}.relu input={name}.affine")
        lines.append(f"component-node name={name}.batchnorm component={name}.batchnorm input={name}.relu")
        previous = f"{name}.batchnorm"
    lines.append("component-node name=stats-extraction-0-10000 component=stats-extraction-0-10000 "
                 "input=tdnn5.batchnorm")
    lines.append("component-node name=stats-pooling-0-10000 component=stats-pooling-0-10000 "
                 "input=stats-extraction-0-10000")
    lines.append("component-node name=tdnn6.affine component=tdnn6.affine input=Round(stats-pooling-0-10000, 1)")
    previous = "tdnn6.affine"
    for name in ("tdnn6", "tdnn7"):
        if name == "tdnn7":
            lines.append("component-node name=tdnn7.affine component=tdnn7.affine input=tdnn6.batchnorm")
        lines.append(f"component-node name={name}.relu component={name}.relu input={name}.affine")
        lines.append(f"component-node name={name}.batchnorm component={name}.batchnorm input={name}.relu")
    lines.append("component-node name=output.affine component=output.affine input=tdnn7.batchnorm")
    lines.append("component-node name=output.log-softmax component=output.log-softmax input=output.affine")
    lines.append("output-node name=output input=output.log-softmax objective=linear")
    return lines


class _Out:
    """Kaldi io-funcs: WriteToken / WriteBasicType / Vector::Write / Matrix::Write, text or binary."""

    def __init__(self, binary):
        self.binary, self.parts = binary, []

    def raw(self, data):
        self.parts.append(data if isinstance(data, bytes) else data.encode())

    def token(self, token):
        self.raw(token + " ")

    def int(self, value):
        self.raw(b"\x04" + struct.pack("<i", value) if self.binary else f"{value} ")

    def float(self, value):
        self.raw(b"\x04" + struct.pack("<f", value) if self.binary else f"{float(np.float32(value)):.9g} ")

    def double(self, value):
        self.raw(b"\x08" + struct.pack("<d", value) if self.binary else f"{value!r} ")

    def bool(self, value):
        self.raw(("T" if value else "F") if self.binary else ("T " if value else "F "))

    def vector(self, values):
        values = np.asarray(values, np.float32)
        if self.binary:
            self.token("FV")
            self.int(len(values))
            self.raw(values.astype("<f4").tobytes())
        else:
            self.raw(" [ " + " ".join(f"{v:.9g}" for v in values) + " ]\n")

    def matrix(self, values):
        values = np.asarray(values, np.float32)
        if self.binary:
            self.token("FM")
            self.int(values.shape[0])
            self.int(values.shape[1])
            self.raw(values.astype("<f4").tobytes())
        else:
            rows = "\n  ".join(" ".join(f"{v:.9g}" for v in row) for row in values)
            self.raw(f" [\n  {rows} ]\n")


def _write_affine(out, component, natural_gradient):
    kind = "NaturalGradientAffineComponent" if natural_gradient else "AffineComponent"
    out.token(f"<{kind}>")
    out.token("<MaxChange>")
    out.float(0.75)
    out.token("<LearningRate>")
    out.float(0.0001)
    out.token("<LinearParams>")
    out.matrix(component["LinearParams"])
    out.token("<BiasParams>")
    out.vector(component["BiasParams"])
    if natural_gradient:
        for token, value in (("<RankIn>", 20), ("<RankOut>", 80)):
            out.token(token)
            out.int(value)
        out.token("<UpdatePeriod>")
        out.int(4)
        out.token("<NumSamplesHistory>")
        out.float(2000.0)
        out.token("<Alpha>")
        out.float(4.0)
    out.token(f"</{kind}>")


def _write_nonlinear(out, kind, dim):
    out.token(f"<{kind}>")
    out.token("<Dim>")
    out.int(dim)
    for token in ("<ValueAvg>", "<DerivAvg>"):
        out.token(token)
        out.vector(np.full(dim, 0.25))
    out.token("<Count>")
    out.double(5000.0)
    out.token("<OderivRms>")
    out.vector(np.full(dim, 0.01))
    out.token("<OderivCount>")
    out.double(5000.0)
    out.token("<NumDimsSelfRepaired>")
    out.double(0.0)
    out.token("<NumDimsProcessed>")
    out.double(0.0)
    out.token(f"</{kind}>")


def _write_batchnorm(out, component, dim):
    out.token("<BatchNormComponent>")
    out.token("<Dim>")
    out.int(dim)
    out.token("<BlockDim>")
    out.int(dim)
    out.token("<Epsilon>")
    out.float(component["Epsilon"])
    out.token("<TargetRms>")
    out.float(component["TargetRms"])
    out.token("<TestMode>")
    out.bool(False)
    out.token("<Count>")
    out.double(component["Count"])
    out.token("<StatsMean>")
    out.vector(component["StatsMean"])
    out.token("<StatsVar>")
    out.vector(component["StatsVar"])
    out.token("</BatchNormComponent>")


def nnet3_bytes(model: dict, binary: bool, lines=None, extra_component=None) -> bytes:
    """Nnet::Write of the model (``extra_component``: (name, raw bytes of a component) appended, for tests)."""
    out = _Out(binary)
    if binary:
        out.raw(b"\0B")
    out.token("<Nnet3>")
    out.raw("\n" + "".join(line + "\n" for line in (lines or config_lines())) + "\n")
    names = []
    for name in ("tdnn1", "tdnn2", "tdnn3", "tdnn4", "tdnn5"):
        names += [f"{name}.affine", f"{name}.relu", f"{name}.batchnorm"]
    names += ["stats-extraction-0-10000", "stats-pooling-0-10000"]
    names += ["tdnn6.affine", "tdnn6.relu", "tdnn6.batchnorm", "tdnn7.affine", "tdnn7.relu", "tdnn7.batchnorm",
              "output.affine", "output.log-softmax"]
    out.token("<NumComponents>")
    out.int(len(names) + (1 if extra_component else 0))
    if not binary:
        out.raw("\n")
    dims = {"tdnn5": POOL_DIM, "tdnn6": EMB_DIM, "tdnn7": EMB_DIM}
    for name in names:
        out.token("<ComponentName>")
        out.token(name)
        layer = name.split(".")[0]
        dim = dims.get(layer, FRAME_DIM)
        if name.endswith(".affine"):
            # tdnn2 as a plain AffineComponent: both affine kinds are read
            _write_affine(out, model[name], natural_gradient=name != "tdnn2.affine")
        elif name.endswith(".relu"):
            _write_nonlinear(out, "RectifiedLinearComponent", dim)
        elif name.endswith(".batchnorm"):
            _write_batchnorm(out, model[name], dim)
        elif name == "output.log-softmax":
            _write_nonlinear(out, "LogSoftmaxComponent", NUM_TARGETS)
        elif name.startswith("stats-extraction"):
            out.token("<StatisticsExtractionComponent>")
            for token, value in (("<InputDim>", POOL_DIM), ("<InputPeriod>", 1), ("<OutputPeriod>", 1)):
                out.token(token)
                out.int(value)
            out.token("<IncludeVarinance>")   # sic: Kaldi's token
            out.bool(True)
            out.token("</StatisticsExtractionComponent>")
        elif name.startswith("stats-pooling"):
            out.token("<StatisticsPoolingComponent>")
            for token, value in (("<InputDim>", 2 * POOL_DIM + 1), ("<InputPeriod>", 1), ("<LeftContext>", 0),
                                 ("<RightContext>", 10000), ("<NumLogCountFeatures>", 0)):
                out.token(token)
                out.int(value)
            out.token("<OutputStddevs>")
            out.bool(True)
            out.token("<VarianceFloor>")
            out.float(VARIANCE_FLOOR)
            out.token("</StatisticsPoolingComponent>")
        if not binary:
            out.raw("\n")
    if extra_component:
        out.token("<ComponentName>")
        out.token(extra_component[0])
        out.raw(extra_component[1])
    out.token("</Nnet3>")
    return b"".join(out.parts)


def reference_inputs(seed: int = SEED + 1) -> dict:
    """Feature matrices of several lengths: the receptive field (15), short, typical, long."""
    rng = np.random.default_rng(seed)
    return {f"utt{n}": rng.normal(0, 1, (n, FEAT_DIM)).astype(np.float32) for n in (15, 16, 40, 173, 600)}


def write_fixtures(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    model = make_model()
    for binary, name in ((False, "final.txt.raw"), (True, "final.raw")):
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(nnet3_bytes(model, binary))
    arrays = {}
    for utt, feats in reference_inputs().items():
        arrays[f"{utt}/feats"] = feats
        arrays[f"{utt}/xvector"] = forward(model, feats)["tdnn6.affine"]
    np.savez(os.path.join(directory, "reference.npz"), **arrays)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: kaldi_nnet3_reference.py <out-dir>")
    write_fixtures(sys.argv[1])
