"""data.service: the shard input served by tf.data service workers (tfspk-data-service)."""
import os
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from conftest import run
from test_train import TINY, make_features
from tfspk.errors import ToolError
from tfspk.train import config as config_mod


def _free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _shard_configs(tmp_path, service):
    """A tiny data dir packed into shards; its trainer configs read locally and through ``service``."""
    from tfspk.data.shards import make_shards
    data = make_features(str(tmp_path / "data"), min_len=60, max_len=80)
    make_shards(data, str(tmp_path / "shards"), utts_per_shard=10, seed=3)
    base = TINY + ["data.source=shards", f"data.shards={tmp_path}/shards"]
    return data, config_mod.build_config(None, base), config_mod.build_config(None, base + [f"data.service={service}"])


def _batches(dataset, count):
    return [(f.numpy(), l.numpy()) for f, l in dataset.take(count)]


def test_one_served_worker_delivers_the_local_stream_and_resumes_at_a_step(tmp_path):
    import tensorflow as tf
    from tfspk.train.inputs.shards import ShardInput
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer()
    worker = service.WorkerServer(service.WorkerConfig(dispatcher_address=dispatcher.target.split("://")[1]))
    data, local, served = _shard_configs(tmp_path, dispatcher.target)
    expected = _batches(ShardInput(data, local).dataset(0), 6)
    got = _batches(ShardInput(data, served).dataset(0), 6)
    resumed = _batches(ShardInput(data, served).dataset(4), 2)
    for (f, l), (gf, gl) in zip(expected, got):
        np.testing.assert_array_equal(f, gf)
        np.testing.assert_array_equal(l, gl)
    for (f, l), (gf, gl) in zip(expected[4:], resumed):
        np.testing.assert_array_equal(f, gf)
        np.testing.assert_array_equal(l, gl)
    assert len(got) == 6 and len(resumed) == 2
    del worker


@pytest.mark.parametrize("overrides, message", [
    (["data.service=grpc://localhost:5050"], "config key 'data.service': expected '' unless data.source is shards"),
    (["data.source=shards", "data.service=localhost"], "expected a dispatcher address grpc://host:port"),
])
def test_service_config_errors(overrides, message):
    with pytest.raises(ToolError, match=message):
        config_mod.build_config(None, TINY + overrides)


def test_data_service_tool_serves_a_trainer_and_stops_on_sigterm(tmp_path):
    import tensorflow as tf
    from tfspk.train.inputs.shards import ShardInput
    port = _free_port()
    server = subprocess.Popen(["tfspk-data-service", f"--port={port}", "--workers=1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    try:
        data, local, served = _shard_configs(tmp_path, f"grpc://localhost:{port}")
        deadline = time.time() + 60
        while time.time() < deadline and server.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("localhost", port)) == 0:
                    break
            time.sleep(0.2)
        expected = _batches(ShardInput(data, local).dataset(2), 3)
        for (f, l), (gf, gl) in zip(expected, _batches(ShardInput(data, served).dataset(2), 3)):
            np.testing.assert_array_equal(f, gf)
            np.testing.assert_array_equal(l, gl)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "1 worker(s) registered with" in stderr and "stopping" in stderr
    del tf


def test_data_service_tool_errors():
    proc = run(["tfspk-data-service", "--dispatcher=nohost"], check=False)
    assert proc.returncode != 0 and "--dispatcher: expected host:port, got 'nohost'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(["tfspk-data-service", "--workers=0", "--dispatcher=h:1"], check=False)
    assert proc.returncode != 0 and "--workers must be >= 1" in proc.stderr


def test_a_dead_dispatcher_address_fails_with_a_deadline_not_a_hang(tmp_path):
    """tfspk-train with data.service at a dead address, and tfspk-data-service --dispatcher at one: progress
    lines, then an error naming the address after the deadline (before: both waited for ever)."""
    from tfspk.data.shards import make_shards
    data = make_features(str(tmp_path / "data"), min_len=60, max_len=80)
    make_shards(data, str(tmp_path / "shards"), utts_per_shard=10, seed=3)
    sets = " ".join(f"--set {kv}" for kv in TINY + ["data.source=shards", f"data.shards={tmp_path}/shards",
                                                      "data.service=grpc://localhost:1", "data.service_timeout=3"])
    started = time.time()
    proc = run(f"tfspk-train {sets} {data} {tmp_path}/exp", check=False, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert ("ERROR (tfspk-train) cannot reach the tf.data service dispatcher at grpc://localhost:1 within 3 s: "
            "Connection refused") in proc.stderr, proc.stderr
    assert "waiting for the tf.data service dispatcher at grpc://localhost:1" in proc.stderr
    assert "cannot reach the tf.data service dispatcher at grpc://localhost:1" in (tmp_path / "exp/log/train.log").read_text()
    started = time.time()
    proc = run("tfspk-data-service --dispatcher=localhost:1 --timeout=2", check=False, timeout=120)
    assert time.time() - started < 60
    assert proc.returncode == 1 and "waiting for the tf.data service dispatcher at grpc://localhost:1" in proc.stderr
    assert ("ERROR (tfspk-data-service) cannot reach the tf.data service dispatcher at grpc://localhost:1 "
            "within 2 s") in proc.stderr
    bad = run("tfspk-data-service --dispatcher=localhost:1 --timeout=0", check=False)
    assert bad.returncode == 1 and "--timeout must be a positive number of seconds" in bad.stderr


def test_service_timeout_is_checked():
    with pytest.raises(ToolError, match="data.service_timeout"):
        config_mod.build_config(None, ["data.service_timeout=0"])
