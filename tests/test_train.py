"""tfspk.train / tfspk-train / steps/train_xvector.sh: config, LR policy, resume, distribution, errors.

Everything runs on tiny synthetic Kaldi features (8 speakers, 12-dim, 60-120 frames) with a network
of width 16, so a training step takes milliseconds.
"""
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from conftest import run, run_tool_here
from tfspk.errors import ToolError
from tfspk.train import config as config_mod
from tfspk.train import schedule

TINY = ["nnet.params.frame_dim=16", "nnet.params.pooling_dim=24", "nnet.params.embedding_dim=8",
        "data.speakers_per_batch=4", "data.min_frames=48", "data.max_frames=48", "valid.num_utts=8", "valid.frames=40",
        "schedule.steps_per_epoch=4", "log_every=2", "optimizer.lr=0.05"]


def make_features(directory, num_speakers=8, utts_per_speaker=6, dim=12, seed=0, min_len=60, max_len=120,
                  dims_by_utt=None):
    """A Kaldi data dir with speaker-dependent Gaussian features written by tfspk.io's ArchiveWriter."""
    from tfspk.io.ark import ArchiveWriter
    from tfspk.io.table import write_table
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (num_speakers, dim + 1))
    utt2spk, utt2num_frames = [], []
    utts = [(s, u) for s in range(num_speakers) for u in range(utts_per_speaker)]
    half = len(utts) // 2
    parts = [utts[:half], utts[half:]]
    for index, part in enumerate(parts):
        with ArchiveWriter(f"ark,scp:{directory}/feats.{index}.ark,{directory}/feats.{index}.scp") as writer:
            for s, u in part:
                frames = int(rng.integers(min_len, max_len))
                utt = f"spk{s}-utt{u}"
                d = dims_by_utt(index) if dims_by_utt else dim
                writer.write(utt, (centres[s, :d] + rng.normal(0, 1, (frames, d))).astype(np.float32))
                utt2spk.append((utt, f"spk{s}"))
                utt2num_frames.append((utt, str(frames)))
    with open(f"{directory}/feats.scp", "w") as out:
        for index in range(2):
            out.write(open(f"{directory}/feats.{index}.scp").read())
    write_table(f"{directory}/utt2spk", utt2spk)
    write_table(f"{directory}/utt2num_frames", utt2num_frames)
    return directory


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_features(str(tmp_path_factory.mktemp("train_data") / "data"))


def tiny_config(*extra):
    return config_mod.build_config(None, TINY + list(extra))


# ------------------------------------------------------------------------------------------ config
def test_unknown_config_key_names_it_and_the_valid_ones(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("optimizer:\n  lr: 0.1\n  learning_rate: 0.2\n")
    with pytest.raises(ToolError, match=r"unknown config key 'optimizer.learning_rate'; valid keys in "
                                        r"optimizer: name, lr, momentum"):
        config_mod.build_config(str(path))
    with pytest.raises(ToolError, match=r"unknown config key 'epochs'; valid keys: seed, nnet, loss"):
        config_mod.build_config(None, ["epochs=3"])


def test_config_types_and_ranges_are_checked():
    with pytest.raises(ToolError, match=r"config key 'optimizer.lr': expected a number, got 'fast'"):
        config_mod.build_config(None, ["optimizer.lr=fast"])
    with pytest.raises(ToolError, match=r"'schedule.steps_per_epoch': expected an integer"):
        config_mod.build_config(None, ["schedule.steps_per_epoch=2.5"])
    with pytest.raises(ToolError, match=r"'data.max_frames': expected >= data.min_frames \(200\)"):
        config_mod.build_config(None, ["data.max_frames=100"])
    with pytest.raises(ToolError, match=r"'optimizer.name': expected one of sgd, adam"):
        config_mod.build_config(None, ["optimizer.name=rmsprop"])


def test_yaml_file_then_overrides_take_precedence(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("optimizer: {name: adam, lr: 0.001}\nloss: {name: amsoftmax, params: {margin: 0.3}}\n"
                    "aux: [ring]\n")
    config = config_mod.build_config(str(path), ["optimizer.lr=0.002", "loss.params.margin=0.25"])
    assert config.optimizer.name == "adam" and config.optimizer.lr == 0.002
    assert config.loss.name == "amsoftmax" and config.loss.params == {"margin": 0.25}
    assert [a.name for a in config.aux] == ["ring"]
    assert config.schedule.patience == config_mod.ScheduleConfig().patience  # untouched default


def test_printed_default_config_documents_every_key_and_reads_back():
    from tfspk.train import components
    text = config_mod.commented_default_config(components.parameter_docs())
    data = yaml.safe_load(text)
    assert config_mod.from_dict(config_mod.TrainConfig, data) == config_mod.TrainConfig()
    for section in ("optimizer", "schedule", "data", "valid"):
        for key in data[section]:
            assert f"  {key}:" in text
    assert "# L2 regularisation added to the loss" in text
    assert "amsoftmax:" in text and "m3=0.2" in text  # loss parameters listed with defaults


def test_loss_and_network_names_and_params_are_checked():
    from tfspk.train import components
    with pytest.raises(ToolError, match=r"unknown loss 'amsofmax'; valid names: .*amsoftmax"):
        components.resolve(tiny_config("loss.name=amsofmax"))
    with pytest.raises(ToolError, match=r"unknown auxiliary loss 'rings'; valid names: mhe.*ring"):
        components.resolve(tiny_config("aux=[rings]"))
    with pytest.raises(ToolError, match=r"m3 must be in \[0, 2\), got -0.1"):
        components.resolve(tiny_config("loss.name=amsoftmax", "loss.params.margin=-0.1"))
    with pytest.raises(ToolError, match=r"network 'tdnn': unknown parameter 'widths'; valid parameters: frame_dim"):
        components.resolve(tiny_config("nnet.params.widths=3"))
    with pytest.raises(ToolError, match=r"'nnet.frame_dim': the network's parameters go under nnet.params"):
        components.resolve(tiny_config("nnet.frame_dim=3"))
    resolved = components.resolve(tiny_config("loss.name=AM-Softmax", "loss.params.margin=0.3"))
    assert resolved.loss.name == "amsoftmax" and resolved.loss.params["m3"] == 0.3
    assert resolved.nnet.name == "tdnn" and resolved.nnet.params["frame_dim"] == 16


# ---------------------------------------------------------------------------------------- LR policy
def _policy_reference(losses, lr, factor, patience, max_reductions, min_lr):
    """Independent statement of the policy of docs/training.md: returns (lrs after each epoch, stop epoch)."""
    best, bad, reductions, lrs = math.inf, 0, 0, []
    for epoch, loss in enumerate(losses, 1):
        if loss < best:
            best, bad, reductions = loss, 0, 0
        else:
            bad += 1
            if bad == patience:
                bad = 0
                if reductions == max_reductions or lr * factor < min_lr:
                    return lrs + [lr if reductions == max_reductions else lr * factor], epoch
                reductions += 1
                lr *= factor
        lrs.append(lr)
    return lrs, None


@pytest.mark.parametrize("losses", [[5, 4, 4.5, 4.2, 3.9, 4, 4, 4, 4, 4, 4, 4, 4],
                                    [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3],
                                    [9, 8, 7, 6, 5, 4, 3, 2, 1]])
def test_plateau_policy_halves_and_stops_like_the_reference(losses):
    expected_lrs, expected_stop = _policy_reference(losses, 0.01, 0.5, 2, 3, 1e-5)
    state, lr, lrs, stop = schedule.PlateauState(), 0.01, [], None
    for epoch, loss in enumerate(losses, 1):
        decision = schedule.plateau_step(state, loss, lr, lr_factor=0.5, patience=2, min_improvement=0.0,
                                         max_reductions_without_improvement=3, min_lr=1e-5)
        lr = decision.new_lr
        lrs.append(lr)
        if decision.stop:
            stop = epoch
            break
    assert stop == expected_stop
    np.testing.assert_allclose(lrs, expected_lrs)


def test_plateau_policy_stops_below_min_lr():
    state = schedule.PlateauState(best_loss=1.0)
    decision = schedule.plateau_step(state, 2.0, 1.5e-5, lr_factor=0.5, patience=1, min_improvement=0.0,
                                     max_reductions_without_improvement=10, min_lr=1e-5)
    assert decision.stop and "below min_lr" in decision.reason


# ------------------------------------------------------------------------------------------- EER
def _eer_reference(targets, nontargets):
    """Kaldi compute-eer as a plain loop (docs: reference/kaldi.md 'Metrics')."""
    t, f = sorted(targets), sorted(nontargets)
    p = 0
    while p + 1 < len(t):
        nt = max(len(f) - 1 - (len(f) * p) // len(t), 0)
        if f[nt] < t[p]:
            break
        p += 1
    return p / len(t), t[p]


def test_validation_eer_matches_kaldi_compute_eer_loop():
    from tfspk.metrics.detection import eer_from_arrays as kaldi_eer
    rng = np.random.default_rng(3)
    for num_t, num_f, shift in [(50, 400, 1.0), (7, 13, 0.3), (100, 100, 5.0), (3, 1000, -1.0)]:
        targets = rng.normal(shift, 1, num_t)
        nontargets = rng.normal(0, 1, num_f)
        assert kaldi_eer(targets, nontargets) == pytest.approx(_eer_reference(targets, nontargets))
    assert kaldi_eer([2.0, 3.0], [0.0, 1.0])[0] == 0.0


# ------------------------------------------------------------------------------------ training runs
def _checkpoint_values(exp_dir):
    import tensorflow as tf
    path = tf.train.latest_checkpoint(os.path.join(exp_dir, "ckpt"))
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_resume_continues_from_the_checkpoint_and_refuses_another_experiment(data_dir, tmp_path):
    """A run stopped after epoch 1 resumes at global step 4 and ends at step 12; the checkpoint of another experiment
    is refused. That the resumed run ends bit-identical to an uninterrupted one (weights, optimizer slots, step, LR,
    plateau state, Ring radius) is tests/test_resume.py's, with these loss and aux losses (its
    amsoftmax_anneal_ring_mhe setup) and variable crop lengths."""
    from tfspk.train import train
    extra = ("loss.name=amsoftmax", "aux=[ring, mhe]", "schedule.patience=1")
    interrupted = str(tmp_path / "interrupted")
    train(data_dir, interrupted, tiny_config("schedule.num_epochs=1", *extra), stream=open(os.devnull, "w"))
    assert int(_checkpoint_values(interrupted)["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    result = train(data_dir, interrupted, tiny_config("schedule.num_epochs=3", *extra), stream=open(os.devnull, "w"))
    assert [e.epoch for e in result.epochs] == [2, 3]
    assert int(_checkpoint_values(interrupted)["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 12
    log = open(os.path.join(interrupted, "log", "train.log")).read()
    assert "resumed from" in log and "global step 4" in log
    with pytest.raises(ToolError, match=r"checkpoint of a different experiment \(.*loss.name: "
                                        r"'amsoftmax' -> 'softmax'"):
        train(data_dir, interrupted, tiny_config("schedule.num_epochs=4"), stream=open(os.devnull, "w"))


def test_process_readers_resume_a_thread_run_to_the_same_state(data_dir, tmp_path):
    """data.readers=processes (forked reader workers) gives the batches of the thread readers: a run
    interrupted with threads and resumed with processes at data.worker_nice 19 ends where an uninterrupted
    thread run does."""
    from tfspk.train import train
    straight, interrupted = str(tmp_path / "straight"), str(tmp_path / "interrupted")
    train(data_dir, straight, tiny_config("schedule.num_epochs=2"), stream=open(os.devnull, "w"))
    train(data_dir, interrupted, tiny_config("schedule.num_epochs=1"), stream=open(os.devnull, "w"))
    result = train(data_dir, interrupted, tiny_config("schedule.num_epochs=2", "data.readers=processes",
                                                      "data.worker_nice=19"), stream=open(os.devnull, "w"))
    assert [e.epoch for e in result.epochs] == [2]
    a, b = _checkpoint_values(straight), _checkpoint_values(interrupted)
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with pytest.raises(ToolError, match="data.readers"):
        tiny_config("data.readers=forks")
    for nice in ("-1", "20"):
        with pytest.raises(ToolError, match="data.worker_nice"):
            tiny_config(f"data.worker_nice={nice}")


def test_checkpoint_of_another_layout_is_a_clear_error(data_dir, tmp_path):
    """A ckpt/ written by something else (an older trainer, another network) must not crash inside TF."""
    import tensorflow as tf
    from tfspk.train import train
    exp = tmp_path / "exp"
    foreign = tf.train.Checkpoint(unrelated=tf.Variable(np.zeros(3, np.float32)))
    tf.train.CheckpointManager(foreign, str(exp / "ckpt"), max_to_keep=1).save()
    with pytest.raises(ToolError, match=r"cannot resume from .*ckpt.*move .*ckpt away"):
        train(data_dir, str(exp), tiny_config("schedule.num_epochs=1"), stream=open(os.devnull, "w"))


def test_load_for_inference_names_what_is_missing(data_dir, tmp_path):
    from tfspk.train import load_for_inference
    with pytest.raises(ToolError, match=r"missing .*config.yaml"):
        load_for_inference(str(tmp_path))
    (tmp_path / "config.yaml").write_text("feat_dim: 12\nnnet: {params: {frame_dim: 16}}\n")
    with pytest.raises(ToolError, match=r"missing .*final/model.weights.h5"):
        load_for_inference(str(tmp_path))


def test_end_to_end_via_train_xvector_sh_loss_falls(data_dir, tmp_path):
    """steps/train_xvector.sh -> tfspk-train on archives; the training loss falls; outputs complete."""
    exp = tmp_path / "exp"
    cfg = tmp_path / "xvector.yaml"
    # All 8 speakers in every batch and fast-moving BN statistics: a clear fall within 48 steps.
    # Validation EER on held-out speakers: 4 new speakers, all pairs of their utterances as trials.
    eer_dir = make_features(str(tmp_path / "heldout"), num_speakers=4, utts_per_speaker=3, seed=7)
    utts = sorted(line.split()[0] for line in open(os.path.join(eer_dir, "utt2spk")))
    with open(os.path.join(eer_dir, "trials"), "w") as trials:
        for i, a in enumerate(utts):
            for b in utts[i + 1:]:
                trials.write(f"{a} {b} {'target' if a.split('-')[0] == b.split('-')[0] else 'nontarget'}\n")
    cfg.write_text(yaml.safe_dump(config_mod.to_dict(tiny_config(
        "schedule.num_epochs=6", "schedule.steps_per_epoch=8", "data.speakers_per_batch=8",
        "nnet.params.bn_momentum=0.8", f"valid.eer_data={eer_dir}"))))
    proc = run(["train_xvector.sh", "--train-config", str(cfg), "--loss", "amsoftmax", "--margin", "0.2", "--aux",
                "ring", "--set", "loss.params.anneal=false", "--set", "valid.num_utts=8", data_dir, str(exp)])
    assert "train_xvector.sh --train-config" in proc.stdout  # the command line is echoed
    log = (exp / "log" / "train.log").read_text()
    epochs = [line for line in log.splitlines() if "valid-loss" in line]
    losses = [float(line.split(" loss ")[1].split()[0]) for line in epochs]
    valid_losses = [float(line.split(" valid-loss ")[1].split()[0]) for line in epochs]
    assert len(losses) == 6
    assert losses[-1] < 0.3 * losses[0], losses
    assert valid_losses[-1] < 0.3 * valid_losses[0], valid_losses
    eers = [float(line.split(" valid-eer ")[1].split("%")[0]) for line in epochs]
    assert all(0.0 <= e <= 100.0 for e in eers) and len(eers) == 6
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["feat_dim"] == 12 and saved["num_classes"] == 8 and saved["tfspk_version"]
    assert saved["loss"]["name"] == "amsoftmax" and saved["loss"]["params"]["m3"] == 0.2
    assert [a["name"] for a in saved["aux"]] == ["ring"]
    spk2int = (exp / "spk2int").read_text().split("\n")
    assert spk2int[:2] == ["spk0 0", "spk1 1"]
    assert list((exp / "tb").iterdir())
    from tfspk.train import load_for_inference
    model, config = load_for_inference(str(exp))
    assert config["feat_dim"] == 12
    out = model(np.zeros((2, 40, 12), np.float32), training=False)
    assert out["embedding_a"].shape == (2, 8)


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("argv, message", [
    (["--loss", "nosuchloss"], r"ERROR \(.*\) unknown loss 'nosuchloss'; valid names: adaptive_rectangle"),
    (["--aux", "ring,bogus"], r"unknown auxiliary loss 'bogus'; valid names: mhe"),
    (["--loss", "arcsoftmax", "--margin", "-1"], r"loss 'arcsoftmax'.*m2"),
    (["--loss", "softmax", "--margin", "0.2"], r"loss 'softmax': unknown parameter 'margin'"),
    (["--set", "data.speakers_per_batch=20"], r"only \d+ speakers .*num_speakers=20.*data.speakers_per_batch"),
    (["--set", "nnet.weight_decay=0.001"], r"both nnet.weight_decay and optimizer.weight_decay"),
    (["--set", "data.min_frames=500", "--set", "data.max_frames=600"], r"no utterance has min_frames=500"),
])
def test_tfspk_train_bad_options_give_a_clear_error(argv, message, data_dir, tmp_path):
    failed = run_tool_here(["tfspk-train", *TINY_ARGS, *argv, data_dir, tmp_path / "exp"], check=False)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    assert __import__("re").search(message, failed.stderr), failed.stderr


TINY_ARGS = [a for kv in TINY for a in ("--set", kv)]


def test_tfspk_train_bad_data_dirs(tmp_path):
    mixed = make_features(str(tmp_path / "mixed"), dims_by_utt=lambda part: 12 if part == 0 else 13)
    failed = run_tool_here(["tfspk-train", *TINY_ARGS, mixed, tmp_path / "e1"], check=False)
    assert failed.returncode == 1 and "dimension" in failed.stderr and "feats.1.ark" in failed.stderr, failed.stderr
    no_frames = make_features(str(tmp_path / "noframes"))
    os.remove(os.path.join(no_frames, "utt2num_frames"))
    failed = run_tool_here(["tfspk-train", *TINY_ARGS, no_frames, tmp_path / "e2"], check=False)
    assert failed.returncode == 1 and "utt2num_frames" in failed.stderr, failed.stderr
    assert not os.path.exists(tmp_path / "e2" / "config.yaml")


def test_print_config_option():
    text = run_tool_here(["tfspk-train", "--print-config"]).stdout
    assert "steps_per_epoch: 1000" in text and "# speakers per training step" in text


def test_train_xvector_sh_checks_inputs(tmp_path):
    proc = run(["train_xvector.sh", str(tmp_path)], check=False)
    assert proc.returncode == 1 and "Usage: " in proc.stderr
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "feats.scp").write_text("")
    (tmp_path / "data" / "utt2spk").write_text("")
    proc = run(["train_xvector.sh", str(tmp_path / "data"), str(tmp_path / "exp")], check=False)
    assert proc.returncode == 1 and f"{tmp_path}/data/utt2num_frames" in proc.stderr
    (tmp_path / "data" / "utt2num_frames").write_text("")
    proc = run(["train_xvector.sh", "--config", str(tmp_path / "none.yaml"), str(tmp_path / "data"),
                str(tmp_path / "exp")], check=False)
    assert proc.returncode == 1 and "none.yaml" in proc.stderr


# --------------------------------------------------------------------------------------- distribution
_DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import sys, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfspk.train import config as config_mod, train
    data_dir, out = sys.argv[1], sys.argv[2]
    train(data_dir, out, config_mod.build_config(None, sys.argv[3:] + ["strategy=mirrored"]),
          stream=open("/dev/null", "w"))
""")
#: The distributed runs of both tests below and their one-device reference: the batch-wise Adaptive Rectangle loss
#: (its per-batch terms would differ per replica without the all-gather of embeddings), with gradient clipping.
DISTRIBUTED = ["schedule.num_epochs=1", "loss.name=adaptive_rectangle", "aux=[ring]", "optimizer.clip_norm=5.0"]


@pytest.fixture(scope="module")
def one_device_run(data_dir, tmp_path_factory):
    """The DISTRIBUTED run on one device (in this process), once for both tests: its checkpoint's tensors."""
    from tfspk.train import train
    exp = str(tmp_path_factory.mktemp("one_device"))
    with open(os.devnull, "w") as quiet:
        train(data_dir, exp, tiny_config(*DISTRIBUTED, "strategy=one"), stream=quiet)
    return _checkpoint_values(exp)


def test_two_replicas_match_one_device(data_dir, tmp_path, one_device_run):
    """MirroredStrategy over two logical CPUs (a process of its own: the devices are set before TensorFlow starts)
    == one device after a few steps (sync BN, gathered loss)."""
    script = tmp_path / "dist.py"
    script.write_text(_DISTRIBUTED_SCRIPT)
    run([sys.executable, str(script), data_dir, str(tmp_path / "mirrored")] + TINY + DISTRIBUTED, timeout=300)
    one, mirrored = one_device_run, _checkpoint_values(str(tmp_path / "mirrored"))
    assert int(mirrored["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    best_one, best_mirrored = (float(values["best_loss/.ATTRIBUTES/VARIABLE_VALUE"]) for values in (one, mirrored))
    assert math.isfinite(best_one) and best_mirrored == pytest.approx(best_one, rel=1e-4)  # the validation losses
    assert set(mirrored) == set(one)
    worst = 0.0
    for key, a in one.items():
        scale = max(1.0, float(np.max(np.abs(a)))) if a.size else 1.0
        worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - mirrored[key]))) / scale if a.size else 0.0)
    assert worst < 1e-4, worst


def _free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_match_one_device(data_dir, tmp_path, one_device_run):
    """MultiWorkerMirroredStrategy with two local worker processes (TF_CONFIG) == one device.

    Tolerance 1e-3 relative: synchronised BN computes the variance as E[x^2] - mean^2 from
    all-reduced sums, the single device in two passes; Adaptive Rectangle's alpha = 30 amplifies
    the float difference over the steps."""
    import json
    args = [a for kv in TINY + DISTRIBUTED for a in ("--set", kv)]
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}))
        # output to files: nothing reads a pipe while they run
        with open(tmp_path / f"worker{index}.out", "w") as out:
            procs.append(subprocess.Popen(["tfspk-train", *args, "--strategy", "multiworker", data_dir,
                                           str(tmp_path / "multi")], env=env, stdout=out, stderr=subprocess.STDOUT))
    for p in procs:
        p.wait(timeout=300)
    outputs = [(tmp_path / f"worker{index}.out").read_text() for index in range(2)]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "2 replica(s)" in (tmp_path / "multi" / "log" / "train.log").read_text()
    assert not (tmp_path / "multi" / "ckpt" / "worker1").exists()
    one, multi = one_device_run, _checkpoint_values(str(tmp_path / "multi"))
    assert int(multi["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    for name, value in one.items():
        scale = max(1.0, float(np.max(np.abs(value)))) if value.size else 1.0
        np.testing.assert_allclose(multi[name], value, rtol=0, atol=1e-3 * scale, err_msg=name)


def test_weight_decay_is_the_l2_term_on_kernels():
    """One plain-SGD step with and without weight decay from the same start: the difference of the
    updates is -lr * wd * W for every kernel (gradient of wd/2 ||W||^2) and 0 for biases/BN."""
    import tensorflow as tf
    from tfspk.train import components
    from tfspk.train.trainer import Trainer
    lr, wd = 0.1, 0.03
    rng = np.random.default_rng(5)
    batch = (tf.constant(rng.normal(size=(4, 30, 12)), tf.float32), tf.constant([0, 1, 2, 3], tf.int32))
    after, before = {}, {}
    for decay in (0.0, wd):
        config = components.resolve(tiny_config("optimizer.momentum=0", f"optimizer.lr={lr}",
                                                f"optimizer.weight_decay={decay}", "strategy=one"))
        trainer = Trainer(config, 12, 5)
        before[decay] = [v.numpy().copy() for v in trainer.variables]
        names = [v.path for v in trainer.variables]
        trainer.train_step(batch)
        after[decay] = [v.numpy() for v in trainer.variables]
    decayed = 0
    for name, w0, w_plain, w_decay, w_start in zip(names, before[0.0], after[0.0], after[wd], before[wd]):
        np.testing.assert_array_equal(w0, w_start, err_msg=name)  # same initial weights
        expected = -lr * wd * w0 if name.endswith("kernel") else np.zeros_like(w0)
        decayed += name.endswith("kernel")
        np.testing.assert_allclose(w_decay - w_plain, expected, rtol=1e-3, atol=1e-6, err_msg=name)
    assert decayed == 8  # 7 affine layers of the network + the class weights


def test_example_config_in_docs_is_valid(repo):
    from tfspk.train import components
    config = components.resolve(config_mod.build_config(str(repo / "docs" / "examples" / "xvector_liu2019.yaml")))
    assert config.loss.name == "amsoftmax" and config.loss.params["m3"] == 0.2
    assert [a.name for a in config.aux] == ["ring", "mhe"] and config.optimizer.weight_decay == 0.01
