"""Independent numpy (float64) statements of the loss formulas, for tests/test_losses*.py.

Written from docs/losses.md (the clean statements of seeds 000-003) in the most literal form:
explicit angles through arccos, the piecewise psi with k = floor(m theta / pi), explicit loops
over the batch-wise pairs of the Adaptive Rectangle loss. Nothing here imports tfspk.
"""
import math

import numpy as np


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def unit_columns(w):
    return w / np.linalg.norm(w, axis=0, keepdims=True)


def cosines(x, w):
    """c_ij = x_i . w_j / (||x_i|| ||w_j||), [N, C]."""
    return unit_rows(x) @ unit_columns(w)


def scale_of(x, scale):
    """||x_i|| as [N, 1] for scale 'norm', else the fixed s."""
    if scale == "norm":
        return np.linalg.norm(x, axis=1, keepdims=True)
    return float(scale)


def cross_entropy(logits, y):
    """mean_i -log softmax(z_i)[y_i]."""
    top = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(lse - logits[np.arange(len(y)), y]))


def softmax_loss(x, w, b, y):
    """[Liu2019, eq. 1] with bias."""
    return cross_entropy(x @ w + b, y)


def modified_softmax_loss(x, w, y, scale):
    """[Liu2019, eq. 2]."""
    return cross_entropy(scale_of(x, scale) * cosines(x, w), y)


def anneal_lambda(step, lambda_b, gamma, alpha, lambda_0):
    """[Liu2019, eq. 8]: lambda = max(lambda_0, lambda_b (1 + gamma step)^-alpha)."""
    return max(lambda_0, lambda_b * (1.0 + gamma * step) ** (-alpha))


def ar_weight(step, s1, s2):
    """[Li2022AR, eq. 13]."""
    return min(1.0, max(step - s1, 0) / s2)


# docs/losses.md: cosines are clipped to [-1 + eps, 1 - eps] before arccos (eps = 1e-6 in tfspk).
COS_CLIP = 1e-6


def theta_of(c):
    return np.arccos(np.clip(c, -1.0 + COS_CLIP, 1.0 - COS_CLIP))


def psi_asoftmax(c, m1):
    """(-1)^k cos(m1 theta) - 2k with theta in [k pi/m1, (k+1) pi/m1] ([Liu2019, eq. 5])."""
    theta = theta_of(c)
    k = np.minimum(np.floor(m1 * theta / math.pi), m1 - 1)
    return (-1.0) ** k * np.cos(m1 * theta) - 2.0 * k


def psi_arc(c, m2):
    """cos(theta + m2), and -cos(theta + m2) - 2 once theta + m2 > pi."""
    t = theta_of(c) + m2
    return np.where(t <= math.pi, np.cos(t), -np.cos(t) - 2.0)


def psi_am(c, m3):
    return c - m3


def psi_combined(c, m1, m2, m3):
    """cos(m1 theta + m2) - m3 ([Liu2019, eq. 3]), continued monotonically past pi."""
    t = m1 * theta_of(c) + m2
    k = np.floor(t / math.pi)
    return (-1.0) ** k * np.cos(t) - 2.0 * k - m3


def margin_logits(x, w, y, scale, psi_fn, lam=None):
    """Logits with z_iy = scale * psi_train(theta_iy), z_ij = scale * c_ij otherwise."""
    c = cosines(x, w)
    rows = np.arange(len(y))
    cy = c[rows, y]
    psi = psi_fn(cy)
    if lam is not None:
        psi = psi / (1.0 + lam) + lam / (1.0 + lam) * cy
    s = scale_of(x, scale)
    z = s * c
    s_rows = s[:, 0] if np.ndim(s) else np.full(len(y), s)
    z[rows, y] = s_rows * psi
    return z


def margin_loss(x, w, y, scale, psi_fn, lam=None):
    return cross_entropy(margin_logits(x, w, y, scale, psi_fn, lam), y)


def dam_margins(x, w, y, m, lam_dam):
    """m_i = m exp(1 - cos theta_iy) / lambda ([Zhou2020, eq. 8])."""
    cy = cosines(x, w)[np.arange(len(y)), y]
    return m * np.exp(1.0 - cy) / lam_dam


def dam_loss(x, w, y, scale, m, lam_dam, frozen_margins=None, anneal=None):
    """[Zhou2020, eq. 7-10]; ``frozen_margins`` holds m_i as constants (the no-gradient default)."""
    margins = dam_margins(x, w, y, m, lam_dam) if frozen_margins is None else frozen_margins
    return margin_loss(x, w, y, scale, lambda cy: cy - margins, anneal)


def real_am_loss(x, w, y, scale, m, form="exp", anneal=None):
    """[Li2022RAM]: L_i = log(1 + sum_{j != y} max(0, exp(s (c_j - c_y + m)) - 1)) (exp form) or
    log(1 + sum_{j != y} max(0, s (c_j - c_y + m))) (hinge form); c_y - m annealed like eq. 8."""
    c = cosines(x, w)
    s = scale_of(x, scale)
    total = 0.0
    for i, label in enumerate(y):
        s_i = s[i, 0] if np.ndim(s) else s
        target = c[i, label] - m
        if anneal is not None:
            target = target / (1.0 + anneal) + anneal / (1.0 + anneal) * c[i, label]
        acc = 0.0
        for j in range(c.shape[1]):
            if j == label:
                continue
            a = s_i * (c[i, j] - target)
            acc += max(0.0, math.exp(a) - 1.0) if form == "exp" else max(0.0, a)
        total += math.log(1.0 + acc)
    return total / len(y)


def adaptive_rectangle_loss(x, w, y, alpha, m1, m2, lambda_h):
    """[Li2022AR, eq. 1, 4-6], literally: every sample against every batch-wise non-target pair.

    With alpha == 'norm' each logit carries its own sample's norm: the pair (j, k) is scaled by
    ||x_j||, the target of sample i by ||x_i||.
    """
    c = cosines(x, w)
    n, classes = c.shape
    sp = c[np.arange(n), y]
    mean_sp = sp.mean()
    norms = np.linalg.norm(x, axis=1)
    scale = norms if alpha == "norm" else np.full(n, float(alpha))
    total = 0.0
    for i in range(n):
        acc = 0.0
        for j in range(n):
            for k in range(classes):
                if k == y[j]:
                    continue
                hard = 1.0 if c[j, k] - mean_sp + lambda_h > 0 else 0.0
                margin = m1 + m2 * hard - m2 / 2.0
                acc += math.exp(scale[j] * (c[j, k] + margin) - scale[i] * sp[i])
        total += math.log(1.0 + acc)
    return total / n


def ar_annealed_loss(x, w, y, alpha, m1, m2, lambda_h, weight):
    """[Li2022AR, eq. 12]: weight * L_AR + (1 - weight) * L_softmax (modified softmax, scale alpha)."""
    softmax = modified_softmax_loss(x, w, y, alpha)
    return weight * adaptive_rectangle_loss(x, w, y, alpha, m1, m2, lambda_h) + (1.0 - weight) * softmax


def circle_weights(x, w, y, m):
    """alpha_p = [1 + m - s_p]_+, alpha_n = [s_n + m]_+ (constants)."""
    c = cosines(x, w)
    sp = c[np.arange(len(y)), y]
    return np.maximum(0.0, 1.0 + m - sp), np.maximum(0.0, c + m)


def circle_loss(x, w, y, gamma, m, frozen=None):
    """Class-level Circle loss: log(1 + sum_{j != y} exp(g a_n (s_n - m)) exp(-g a_p (s_p - 1 + m)))."""
    c = cosines(x, w)
    alpha_p, alpha_n = circle_weights(x, w, y, m) if frozen is None else frozen
    s = scale_of(x, gamma)
    total = 0.0
    for i, label in enumerate(y):
        g = s[i, 0] if np.ndim(s) else s
        positive = g * alpha_p[i] * (c[i, label] - (1.0 - m))
        acc = sum(math.exp(g * alpha_n[i, j] * (c[i, j] - m) - positive)
                  for j in range(c.shape[1]) if j != label)
        total += math.log(1.0 + acc)
    return total / len(y)


def ring_loss(x, radius, lambda_r):
    """[Liu2019, eq. 6]."""
    return lambda_r * float(np.mean((np.linalg.norm(x, axis=1) - radius) ** 2))


def mhe_loss(w, y, lambda_m, eps):
    """[Liu2019, eq. 7] with f(z) = 1/z^2 and ||a - b||^2 = 2 - 2 a.b (+ eps)."""
    wn = unit_columns(w)
    n, classes = len(y), w.shape[1]
    total = 0.0
    for i in range(n):
        for j in range(classes):
            if j != y[i]:
                total += 1.0 / (np.sum((wn[:, y[i]] - wn[:, j]) ** 2) + eps)
    return lambda_m * total / (n * (classes - 1))


def numeric_gradient(fn, array, step=1e-6):
    """Central finite differences of the scalar fn(array) w.r.t. every entry (float64)."""
    array = np.array(array, dtype=np.float64)
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for index in range(flat.size):
        saved = flat[index]
        flat[index] = saved + step
        plus = fn(array)
        flat[index] = saved - step
        minus = fn(array)
        flat[index] = saved
        gflat[index] = (plus - minus) / (2 * step)
    return grad
