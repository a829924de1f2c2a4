"""Score calibration: an affine map from scores (and optional quality measures) to log-likelihood
ratios, trained by prior-weighted logistic regression [Brummer2006].

Model: ``llr = scale * score + offset + sum_k w_k q_k``, where the optional quality measures
``q_k`` of a trial are (the QMF idea of WeSpeaker, [Wang2023]):

* ``min-log-duration``: ``min(log d_enroll, log d_test)`` from an ``utt2dur`` (seconds) or
  ``utt2num_frames`` (frames) file; both give the same calibrated LLRs (log frames = log seconds +
  a constant, absorbed by the offset), but apply with the kind of file you trained with;
* ``min-norm``: ``min(|x_enroll|, |x_test|)``, the Euclidean norms of the (raw) embeddings.

Training minimises the prior-weighted cross-entropy [Brummer2006] (in nats)

    C(theta) = pi / N_tar sum_tar log(1 + e^{-(l_i + logit pi)})
             + (1 - pi) / N_non sum_non log(1 + e^{l_i + logit pi}),   l_i = theta . x_i,

which at pi = 0.5 is ``Cllr * log 2``: a convex function, minimised by Newton's method with a
backtracking line search on standardised features (so that the Hessian is well conditioned).
Targets and non-targets weigh pi and 1 - pi whatever their counts, so pi is the effective target
prior the calibration is tuned for.

Model file (text, one ``key value`` per line, ``#`` comments; values as ``%.17g`` so reading back is
exact)::

    # tfspk linear calibration: llr = scale * score + offset + sum_k weight_k * quality_k
    type linear
    target-prior 0.01
    scale 0.87
    offset -4.2
    quality min-log-duration 0.31      (only with quality measures; one line per measure)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tfspk import cli
from tfspk.backend import tables
from tfspk.io import scores as score_files
from tfspk.io import table
from tfspk.io import xfilename
from tfspk.errors import ToolError

QUALITY_MEASURES = ("min-log-duration", "min-norm")


@dataclass
class LinearCalibration:
    """``llr = scale * score + offset + sum_k quality_weights[name_k] * q_k``."""
    scale: float
    offset: float
    target_prior: float = 0.5
    quality_weights: dict = field(default_factory=dict)   # name -> weight, in QUALITY_MEASURES order

    def apply(self, scores: np.ndarray, quality: np.ndarray | None = None) -> np.ndarray:
        """Calibrated LLRs of ``scores [N]`` with ``quality [N, K]`` in :attr:`quality_weights` order."""
        llr = self.scale * np.asarray(scores, dtype=np.float64) + self.offset
        if self.quality_weights:
            llr += np.asarray(quality, dtype=np.float64) @ np.array(list(self.quality_weights.values()))
        return llr

    def to_text(self) -> str:
        lines = ["# tfspk linear calibration: llr = scale * score + offset + sum_k weight_k * quality_k "
                 "[Brummer2006]", "type linear", f"target-prior {self.target_prior:.17g}",
                 f"scale {self.scale:.17g}", f"offset {self.offset:.17g}"]
        lines += [f"quality {name} {weight:.17g}" for name, weight in self.quality_weights.items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def read(cls, rxfilename: str) -> "LinearCalibration":
        name, lines = xfilename.read_text_lines(rxfilename)
        values, weights = {}, {}
        for number, line in enumerate(lines, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            where = f"{name}:{number}"
            if fields[0] == "quality":
                if len(fields) != 3 or fields[1] not in QUALITY_MEASURES:
                    raise ToolError(f"{where}: expected 'quality <{'|'.join(QUALITY_MEASURES)}> <weight>', "
                                    f"got '{line.strip()}'")
                weights[fields[1]] = _number(fields[2], where)
            elif fields[0] in ("type", "target-prior", "scale", "offset") and len(fields) == 2:
                values[fields[0]] = fields[1] if fields[0] == "type" else _number(fields[1], where)
            else:
                raise ToolError(f"{where}: unexpected line in a calibration model: '{line.strip()}'")
        if values.get("type") != "linear":
            raise ToolError(f"{name}: not a tfspk calibration model (no 'type linear' line)")
        for key in ("scale", "offset"):
            if key not in values:
                raise ToolError(f"{name}: calibration model has no '{key}' line")
        ordered = {q: weights[q] for q in QUALITY_MEASURES if q in weights}
        return cls(values["scale"], values["offset"], values.get("target-prior", 0.5), ordered)


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ToolError(f"{where}: expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise ToolError(f"{where}: value '{text}' is not finite")
    return value


# ---------------------------------------------------------------------- training
def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # exact logistic, no overflow for large |x|


def weighted_cross_entropy(llr, is_target, target_prior: float = 0.5) -> float:
    """C of the module docstring (nats) for given LLRs: the objective of :func:`train_linear_calibration`."""
    llr = np.asarray(llr, dtype=np.float64)
    is_target = np.asarray(is_target, dtype=bool)
    shift = math.log(target_prior) - math.log1p(-target_prior)
    return float(target_prior * _softplus(-(llr[is_target] + shift)).mean()
                 + (1 - target_prior) * _softplus(llr[~is_target] + shift).mean())


def check_two_classes(is_target, what: str) -> None:
    num_targets = int(np.count_nonzero(is_target))
    if num_targets == 0 or num_targets == len(is_target):
        raise ToolError(f"{what}: calibration needs target and non-target trials, got {num_targets} target "
                        f"and {len(is_target) - num_targets} non-target trials")


def train_linear_calibration(scores, is_target, quality=None, quality_names=(), target_prior: float = 0.5,
                             max_iters: int = 100, tolerance: float = 1e-12) -> LinearCalibration:
    """Minimise the prior-weighted cross-entropy (module docstring) over ``(scale, w, offset)``.

    ``quality`` is ``[N, K]`` (columns named by ``quality_names``). Newton's method on the
    standardised features ``x~ = (x - mean) / std`` and a constant: gradient
    ``sum_i c_i (sigmoid(z_i) - y_i) x~_i``, Hessian ``sum_i c_i sigmoid(z_i) sigmoid(-z_i) x~_i x~_i^T``
    with ``c_i = pi / N_tar`` (targets) or ``(1 - pi) / N_non``; stops when the Newton decrement
    ``g^T H^-1 g`` falls below ``tolerance``. Separable data have no finite optimum: the slope then
    grows until the objective stops changing and a warning is printed.
    """
    if not 0 < target_prior < 1:
        raise ToolError(f"--target-prior={target_prior} must be in (0, 1)")
    scores = np.asarray(scores, dtype=np.float64)
    is_target = np.asarray(is_target, dtype=bool)
    check_two_classes(is_target, "training trials")
    columns = [scores] + ([] if quality is None else list(np.asarray(quality, dtype=np.float64).T))
    names = ["score"] + list(quality_names)
    features = np.stack(columns, axis=1)
    mean, std = features.mean(axis=0), features.std(axis=0)
    for name, value in zip(names, std):
        if not value > 0:
            raise ToolError(f"the {name} values of the training trials are all equal: nothing to fit")
    design = np.concatenate([(features - mean) / std, np.ones((len(scores), 1))], axis=1)
    num_targets = np.count_nonzero(is_target)
    weight = np.where(is_target, target_prior / num_targets, (1 - target_prior) / (len(scores) - num_targets))
    sign = np.where(is_target, -1.0, 1.0)                 # loss softplus(sign * z)
    shift = math.log(target_prior) - math.log1p(-target_prior)

    def objective(theta):
        return float(weight @ _softplus(sign * (design @ theta + shift)))

    theta = np.zeros(design.shape[1])
    value = objective(theta)
    converged = False
    for _ in range(max_iters):
        z = design @ theta + shift
        posterior = _sigmoid(z)
        gradient = design.T @ (weight * (posterior - is_target))
        hessian = (design * (weight * posterior * (1 - posterior))[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        decrement = float(gradient @ step)
        if not decrement > tolerance:
            converged = True
            break
        rate = 1.0
        while rate > 1e-10:  # backtracking (Armijo) line search
            candidate = theta - rate * step
            new_value = objective(candidate)
            if new_value <= value - 1e-4 * rate * decrement:
                break
            rate *= 0.5
        else:
            converged = True  # no descent possible within float precision: at the optimum
            break
        theta, value = candidate, new_value
    if not converged:
        cli.warn(f"calibration did not converge in {max_iters} Newton iterations (are the training "
                 f"scores separable?); the objective is {value:.6g}")
    slopes = theta[:-1] / std
    offset = float(theta[-1] - slopes @ mean)
    return LinearCalibration(float(slopes[0]), offset, float(target_prior),
                             dict(zip(names[1:], slopes[1:].tolist())))


# ---------------------------------------------------------------------- quality measures
def read_durations(rxfilename: str) -> dict:
    """``key value`` lines (utt2dur seconds or utt2num_frames) -> key -> positive float."""
    name, lines = xfilename.read_text_lines(rxfilename)
    result = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) != 2:
            raise ToolError(f"{name}:{number}: expected 'key duration', got '{line.strip()}'")
        value = _number(fields[1], f"{name}:{number}")
        if value <= 0:
            raise ToolError(f"{name}:{number}: duration of '{fields[0]}' must be positive, got {fields[1]}")
        result[fields[0]] = value
    return result


def _per_side(pairs, table: dict, what: str):
    """``[N, 2]`` values of the enrolment and test key of every trial; a missing key is an error."""
    try:
        return np.array([(table[e], table[t]) for e, t in pairs], dtype=np.float64)
    except KeyError as err:
        raise ToolError(f"{what} has no entry for '{err.args[0]}'") from None


def quality_measures(pairs, durations_rxfilename: str = "", vectors_rspecifier: str = ""):
    """``(names, [N, K] values)`` of the quality measures the given inputs allow (module docstring)."""
    names, columns = [], []
    if durations_rxfilename:
        sides = _per_side(pairs, read_durations(durations_rxfilename), f"durations {durations_rxfilename}")
        names.append("min-log-duration")
        columns.append(np.log(sides.min(axis=1)))
    if vectors_rspecifier:
        keys, matrix = tables.load_vectors(vectors_rspecifier)
        norms = dict(zip(keys, np.linalg.norm(matrix, axis=1).tolist()))
        names.append("min-norm")
        columns.append(_per_side(pairs, norms, f"vectors {vectors_rspecifier}").min(axis=1))
    return names, (np.stack(columns, axis=1) if columns else None)


# ---------------------------------------------------------------------- the tools
#: default of tfspk-calibrate --min-trials-per-class: a model fitted on fewer target or non-target scores
#: is decided by a handful of trials (4 targets and 1 non-target give every trial an LLR near +27)
MIN_TRIALS_PER_CLASS = 10


def labelled_scores(trials_rxfilename: str, scores_rxfilename: str):
    """``(pairs, scores, is_target)`` of every scored trial; a scored pair without a label is an error,
    labelled trials without a score are a warning that says how many."""
    labels = table.read_labelled_trials(trials_rxfilename)
    pairs, scores = score_files.read_scores(scores_rxfilename)
    scored = set(pairs)
    unscored = [pair for pair in labels if pair not in scored]
    if unscored:
        cli.warn(f"{len(unscored)} of the {len(labels)} labelled trials of {trials_rxfilename} have no score in "
                 f"{scores_rxfilename} (e.g. '{unscored[0][0]} {unscored[0][1]}'); calibrating on the "
                 f"{len(labels) - len(unscored)} scored ones")
    is_target = np.empty(len(pairs), dtype=bool)
    for i, pair in enumerate(pairs):
        label = labels.get(pair)
        if label is None:
            raise ToolError(f"{scores_rxfilename}:{i + 1}: trial '{pair[0]} {pair[1]}' has no label in "
                            f"{trials_rxfilename}")
        is_target[i] = label
    return pairs, scores, is_target


def check_enough_trials(is_target, min_trials: int, what: str) -> None:
    """ToolError unless at least ``min_trials`` target and ``min_trials`` non-target scores are given."""
    num_targets = int(np.count_nonzero(is_target))
    num_nontargets = len(is_target) - num_targets
    if min(num_targets, num_nontargets) < min_trials:
        raise ToolError(f"{what}: only {num_targets} target and {num_nontargets} non-target trials have scores; "
                        f"calibration needs at least {min_trials} of each (--min-trials-per-class), or the model "
                        f"is decided by a handful of trials")


def calibrate(trials_rxfilename: str, scores_rxfilename: str, model_wxfilename: str, target_prior: float = 0.5,
              durations_rxfilename: str = "", vectors_rspecifier: str = "", max_iters: int = 100,
              min_trials: int = MIN_TRIALS_PER_CLASS) -> LinearCalibration:
    """``tfspk-calibrate``: train on the scored, labelled trials and write the model file."""
    if min_trials < 1:
        raise ToolError(f"--min-trials-per-class must be >= 1, got {min_trials}")
    pairs, scores, is_target = labelled_scores(trials_rxfilename, scores_rxfilename)
    check_two_classes(is_target, f"{scores_rxfilename} scored against {trials_rxfilename}")
    check_enough_trials(is_target, min_trials, f"{scores_rxfilename} scored against {trials_rxfilename}")
    names, quality = quality_measures(pairs, durations_rxfilename, vectors_rspecifier)
    model = train_linear_calibration(scores, is_target, quality, names, target_prior, max_iters)
    before = weighted_cross_entropy(scores, is_target, target_prior)
    after = weighted_cross_entropy(model.apply(scores, quality), is_target, target_prior)
    cli.log(f"Trained on {int(is_target.sum())} target and {int((~is_target).sum())} non-target trials: "
            f"llr = {model.scale:.6g} * score + {model.offset:.6g}"
            + "".join(f" + {w:.6g} * {q}" for q, w in model.quality_weights.items())
            + f"; prior-weighted cross-entropy (p={target_prior:g}) {before:.6g} -> {after:.6g} nats")
    table.write_text(model_wxfilename, model.to_text())
    return model


def apply_calibration(model_rxfilename: str, scores_rxfilename: str, scores_wxfilename: str,
                      durations_rxfilename: str = "", vectors_rspecifier: str = "") -> None:
    """``tfspk-apply-calibration``: LLRs for every line of a scores file (same order and keys)."""
    model = LinearCalibration.read(model_rxfilename)
    pairs, scores = score_files.read_scores(scores_rxfilename)
    needed = list(model.quality_weights)
    given = (["min-log-duration"] if durations_rxfilename else []) + (["min-norm"] if vectors_rspecifier else [])
    if needed != given:
        raise ToolError(f"{model_rxfilename} uses the quality measures [{', '.join(needed)}] but the options "
                        f"give [{', '.join(given)}] (--durations gives min-log-duration, --vectors min-norm)")
    _, quality = quality_measures(pairs, durations_rxfilename, vectors_rspecifier)
    table.write_text(scores_wxfilename, score_files.format_scores(pairs, model.apply(scores, quality)))
    cli.log(f"Calibrated {len(pairs)} scores with {model_rxfilename}")
