"""The training inputs (tfspk.train.inputs): one interface for feats, audio and shards.

Each source's diverging run ends in the message naming the batch (main: audio and shards ended in
"internal error AttributeError ... please report it"), and a config key that only another source reads
is refused naming the key (main: accepted and silently ignored).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from conftest import run_tool_here, synth_speech
from test_train import TINY, make_features
from tfspk.errors import ToolError

RATE = 8000


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """A feats data dir, its shards, and an audio data dir with a feature config."""
    from tfspk.data.shards import make_shards
    root = tmp_path_factory.mktemp("inputs")
    feats = make_features(str(root / "feats"), min_len=60, max_len=80)
    make_shards(feats, str(root / "shards"), utts_per_shard=10, seed=3)
    audio = root / "audio"
    (root / "wav").mkdir()
    audio.mkdir()
    wav_scp, utt2spk = [], []
    for s in range(4):
        for u in range(2):
            utt = f"spk{s}-u{u}"
            path = root / "wav" / f"{utt}.wav"
            sf.write(str(path), synth_speech(1.0, RATE, seed=10 * s + u, f0=100 + 25 * s), RATE, subtype="PCM_16")
            wav_scp.append(f"{utt} {path}\n")
            utt2spk.append(f"{utt} spk{s}\n")
    (audio / "wav.scp").write_text("".join(wav_scp))
    (audio / "utt2spk").write_text("".join(utt2spk))
    conf = root / "fbank.conf"
    conf.write_text(f"--sample-frequency={RATE}\n--dither=0\n--num-mel-bins=12\n")
    return {"feats": feats, "shards": str(root / "shards"), "audio": str(audio), "conf": str(conf)}


def _source_args(dirs, source):
    """(data dir, --set assignments) training from ``source``."""
    if source == "feats":
        return dirs["feats"], []
    if source == "shards":
        return dirs["feats"], ["data.source=shards", f"data.shards={dirs['shards']}"]
    return dirs["audio"], ["data.source=audio", f"features.conf={dirs['conf']}", "data.min_frames=40",
                           "data.max_frames=48", "valid.num_utts=0", "data.num_threads=1"]


def _diverge_at(monkeypatch, step):
    """The step that makes global step ``step`` returns a NaN loss (what a diverging network does)."""
    from tfspk.train import trainer

    original = trainer.Trainer.train_step

    def train_step(self, batch):
        values = original(self, batch)
        if self.global_step == step:
            values = dict(values, total=float("nan"), loss=float("nan"))
        return values
    monkeypatch.setattr(trainer.Trainer, "train_step", train_step)


@pytest.mark.parametrize("source, names", [
    ("feats", r"48 frames of spk\d-utt\d \(.*feats\.\d\.ark:\d+\)"),
    ("audio", r"\d+ frames of spk\d-u\d \(.*/wav/spk\d-u\d\.wav, samples \d+\.\.\d+\)"),
    ("shards", r"batch 2 of the shard stream of .*shards/shards\.list \(seed 777\): 4 crops of 48 frames of "
               r"speakers spk\d, spk\d, spk\d, spk\d"),
])
def test_a_diverging_run_names_the_batch_of_the_step_for_every_source(dirs, tmp_path, monkeypatch, source, names):
    from tfspk.train import config as config_mod, train
    data, extra = _source_args(dirs, source)
    config = config_mod.build_config(None, TINY + extra + ["schedule.num_epochs=2"])
    _diverge_at(monkeypatch, 3)
    exp = tmp_path / "exp"
    pattern = (r"^training diverged at step 3 \(loss nan\); the batch of that step was " + names
               + r".*, largest \|feature\| [0-9.e+-]+; lower optimizer.lr")
    with pytest.raises(ToolError, match=pattern):
        train(data, str(exp), config, stream=open(os.devnull, "w"))
    log = (exp / "log" / "train.log").read_text()
    assert "ERROR (tfspk-train) training diverged at step 3 (loss nan)" in log
    assert not (exp / "final" / "DONE").exists()


def test_the_divergence_message_of_the_tool_is_the_error_not_an_internal_one(dirs, tmp_path, monkeypatch):
    data, extra = _source_args(dirs, "audio")
    _diverge_at(monkeypatch, 2)
    options = [a for kv in TINY + extra for a in ("--set", kv)]
    failed = run_tool_here(["tfspk-train", *options, data, tmp_path / "exp"], check=False)
    err = failed.stderr
    assert failed.returncode == 1, err
    assert "training diverged at step 2 (loss nan)" in err and "internal error" not in err, err


INAPPLICABLE = [
    ("feats", "data.allow_resample=false", "data.allow_resample", "audio"),
    ("feats", "data.shards=/nowhere", "data.shards", "shards"),
    ("shards", "augment={spec_augment: true}", "augment", "audio and feats"),
    ("shards", "data.allow_resample=false", "data.allow_resample", "audio"),
    ("shards", "data.readers=processes", "data.readers", "feats"),
    ("shards", "data.worker_nice=19", "data.worker_nice", "audio and feats"),
    ("audio", "data.readers=processes", "data.readers", "feats"),
    ("audio", "data.shards=/nowhere", "data.shards", "shards"),
]


@pytest.mark.parametrize("source, assignment, key, users", INAPPLICABLE)
def test_a_key_of_another_source_is_refused_naming_it(dirs, tmp_path, source, assignment, key, users):
    data, extra = _source_args(dirs, source)
    exp = tmp_path / "exp"
    options = [a for kv in TINY + extra + [assignment] for a in ("--set", kv)]
    failed = run_tool_here(["tfspk-train", *options, data, exp], check=False)
    err = failed.stderr
    assert failed.returncode == 1, err
    assert f"config key '{key}' " in err and f"does not apply to data.source {source}: only data.source {users}" \
        in err, err
    assert "internal error" not in err and "Traceback" not in err
    assert not exp.exists()  # refused before the experiment dir is locked or written


def test_the_keys_of_the_chosen_source_are_accepted_and_every_declared_key_exists(dirs):
    from tfspk.train import config as config_mod
    from tfspk.train.inputs import SOURCES, check_source_keys
    from tfspk.train.inputs.base import config_value
    assert sorted(SOURCES) == ["audio", "feats", "shards"]
    default = config_mod.build_config(None, [])
    for cls in SOURCES.values():
        for key in cls.keys:
            config_value(default, key)  # a ToolError if a source declares a key the config lacks
    data, extra = _source_args(dirs, "audio")
    check_source_keys(config_mod.build_config(None, TINY + extra + ["data.allow_resample=false", "augment={spec_augment: true}",
                                                                    "data.worker_nice=19"]))
    check_source_keys(config_mod.build_config(None, TINY + ["data.readers=processes", "data.worker_nice=19",
                                                            "augment={spec_augment: true}"]))


def test_audio_and_shards_refuse_several_replicas_and_feats_feeds_them(dirs):
    from tfspk.train.inputs import SOURCES
    assert SOURCES["feats"].supports_replicas
    assert not SOURCES["audio"].supports_replicas and not SOURCES["shards"].supports_replicas


def test_every_input_gives_batches_of_its_declared_shape(dirs):
    from tfspk.train import config as config_mod
    from tfspk.train.inputs import make_input
    for source in ("feats", "audio", "shards"):
        data, extra = _source_args(dirs, source)
        config = config_mod.build_config(None, TINY + extra)
        made = make_input(data, config)
        with made.errors():
            feats, labels = next(iter(made.dataset(0)))
        assert feats.shape[0] == made.num_speakers == 4 and feats.shape[2] == made.feat_dim, source
        assert np.all((np.asarray(labels) >= 0) & (np.asarray(labels) < made.num_classes)), source
