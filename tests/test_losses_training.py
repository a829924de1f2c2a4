"""tfspk.losses: Ring loss and MHE against numpy, aux errors, and short training runs per loss."""
import numpy as np
import pytest
import tensorflow as tf

import losses_reference as ref
from tfspk.errors import ToolError
from tfspk.losses import AUX_LOSSES, LOSSES, build_aux, build_loss

D, C = 6, 4
LABELS = np.array([0, 1, 3, 1, 2])


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((5, D)).astype(np.float32) * 3, rng.standard_normal((D, C)).astype(np.float32)


def test_ring_loss_value_and_gradients_match_eq6():
    x, _ = _inputs(1)
    ring = build_aux("ring", {"radius_init": 2.5, "weight": 0.3})
    assert float(build_aux("Ring-Loss").radius) == 20.0 and build_aux("ring").params.weight == 0.01
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = ring(xt, tf.constant(LABELS), None)
    gx, gr = tape.gradient(loss, [xt, ring.radius])
    x64 = x.astype(np.float64)
    assert float(loss) == pytest.approx(ref.ring_loss(x64, 2.5, 0.3), rel=1e-5)
    np.testing.assert_allclose(gx.numpy(), ref.numeric_gradient(lambda a: ref.ring_loss(a, 2.5, 0.3), x64),
                               rtol=1e-3, atol=1e-5)
    num_gr = ref.numeric_gradient(lambda r: ref.ring_loss(x64, r[0], 0.3), np.array([2.5]))
    assert float(gr) == pytest.approx(num_gr[0], rel=1e-3)
    assert ring.trainable_variables == [ring.radius]


@pytest.mark.parametrize("main", ["softmax", "amsoftmax", "adaptive_rectangle"])
def test_mhe_value_and_gradients_match_eq7(main):
    x, w = _inputs(2)
    head = build_loss(main, C, D)
    head.kernel.assign(w)
    mhe = build_aux("MHE", {"weight": 0.5, "epsilon": 1e-3})
    with tf.GradientTape() as tape:
        loss = mhe(tf.constant(x), tf.constant(LABELS), head)
    gw = tape.gradient(loss, head.kernel)
    w64 = w.astype(np.float64)
    assert float(loss) == pytest.approx(ref.mhe_loss(w64, LABELS, 0.5, 1e-3), rel=1e-5)
    np.testing.assert_allclose(gw.numpy(), ref.numeric_gradient(lambda a: ref.mhe_loss(a, LABELS, 0.5, 1e-3), w64),
                               rtol=2e-3, atol=1e-5)


def test_mhe_is_finite_when_class_weights_coincide():
    head = build_loss("amsoftmax", 3, 2)
    head.kernel.assign(np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]], np.float32))  # classes 0 and 1 collinear
    with tf.GradientTape() as tape:
        loss = build_aux("mhe")(tf.zeros((2, 2)), tf.constant([0, 1]), head)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(tape.gradient(loss, head.kernel).numpy()))
    assert float(loss) == pytest.approx(ref.mhe_loss(head.kernel.numpy().astype(np.float64), [0, 1], 0.01, 1e-4),
                                        rel=1e-3)


def test_aux_errors_name_the_valid_choices():
    with pytest.raises(ToolError, match="valid names: mhe.*ring"):
        build_aux("center")
    with pytest.raises(ToolError, match="unknown parameter 'radius_int'.*radius_init"):
        build_aux("ring", {"radius_int": 3})
    with pytest.raises(ToolError, match="epsilon must be > 0"):
        build_aux("mhe", {"epsilon": 0})
    with pytest.raises(ToolError, match="weight must be >= 0"):
        build_aux("ring", {"lambda_r": -1})
    assert set(AUX_LOSSES) == {"ring", "mhe"}


# ----------------------------------------------------------------------------- training runs

def _clusters(classes=6, per_class=12, dim=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dim)) * 2.0
    labels = np.repeat(np.arange(classes), per_class)
    feats = centres[labels] + 0.7 * rng.standard_normal((len(labels), dim))
    return feats.astype(np.float32), labels.astype(np.int32)


def _train(name, params, aux_names=(), steps=50, seed=0):
    """Linear embedding + head (+ aux) with Adam on Gaussian clusters; returns the per-step losses."""
    feats, labels = _clusters(seed=seed)
    classes = int(labels.max()) + 1
    tf.random.set_seed(seed)
    embed = tf.Variable(tf.random.normal([feats.shape[1], 8], stddev=0.3, seed=seed))
    head = build_loss(name, classes, 8, params)
    auxes = [build_aux(a) for a in aux_names]
    variables = [embed] + head.trainable_variables + [v for a in auxes for v in a.trainable_variables]
    import keras
    optimizer = keras.optimizers.Adam(0.03)
    optimizer.build(variables)

    @tf.function
    def train_step(x, y, step):
        with tf.GradientTape() as tape:
            emb = tf.matmul(x, embed)
            loss, _ = head(emb, y, step)
            total = loss + tf.add_n([a(emb, y, head) for a in auxes]) if auxes else loss
        grads = tape.gradient(total, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return total

    # A late global step: the margins and the softmax->AR schedule are fully on.
    history = [float(train_step(feats, labels, tf.constant(10**6 + t, tf.int64))) for t in range(steps)]
    _, logits = head(tf.matmul(feats, embed), labels, 0, margin=False)
    accuracy = float(np.mean(np.argmax(logits.numpy(), axis=1) == labels))
    return history, auxes, accuracy


TRAIN_CASES = [(name, {}) for name in sorted(LOSSES)] + [
    ("asoftmax", {"m1": 2, "anneal": False}), ("real_amsoftmax", {"form": "hinge"}),
    ("amsoftmax", {"scale": 30.0}), ("damsoftmax", {"margin_gradient": True})]


def test_short_training_run_of_every_loss_lowers_the_loss():
    failures = []
    for name, params in TRAIN_CASES:
        history, _, accuracy = _train(name, params)
        first, last = np.mean(history[:3]), np.mean(history[-3:])
        if not (np.all(np.isfinite(history)) and last < 0.2 * first and accuracy > 0.95):
            failures.append(f"{name} {params}: loss {first:.4f} -> {last:.4f}, accuracy {accuracy:.2f}")
    assert not failures, failures


@pytest.mark.parametrize("main", ["amsoftmax", "arcsoftmax", "adaptive_rectangle"])
def test_ring_and_mhe_train_with_main_losses(main):
    history, (ring, _), accuracy = _train(main, {}, aux_names=("ring", "mhe"), steps=40)
    assert np.all(np.isfinite(history)) and np.mean(history[-3:]) < 0.5 * np.mean(history[:3])
    assert accuracy > 0.95
    assert float(ring.radius) != 20.0  # R is trained


def test_head_and_ring_weights_survive_a_checkpoint(tmp_path):
    head, ring = build_loss("amsoftmax", C, D), build_aux("ring")
    saved_kernel = head.kernel.numpy().copy()
    ring.radius.assign(7.0)
    path = tf.train.Checkpoint(head=head, ring=ring).save(str(tmp_path / "ckpt"))
    head2, ring2 = build_loss("amsoftmax", C, D), build_aux("ring")
    tf.train.Checkpoint(head=head2, ring=ring2).restore(path).assert_consumed()
    np.testing.assert_array_equal(head2.kernel.numpy(), saved_kernel)
    assert float(ring2.radius) == 7.0


def test_benchmark_script_runs_and_prints_every_loss(repo):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(repo / "benchmarks" / "bench_losses.py"), "--classes", "8",
                           "--rounds", "1", "--losses", "amsoftmax,adaptive_rectangle"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split()[0] for line in proc.stdout.splitlines() if line.split()[:1]]
    assert {"softmax", "amsoftmax", "adaptive_rectangle"} <= set(rows)
