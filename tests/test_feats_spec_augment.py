"""SpecAugment ([Park2019] time and frequency masks) when training from offline features (data.source feats):
the masks of each training crop equal tfspk.data.dsp.spec_augment's statement on that crop with the generator
of (seed, step, position), after repeat_short tiling; they are a pure function of those numbers (any reader,
any order, any replica share); validation batches are never masked; the waveform options are refused by name.

Before, `augment: {spec_augment: true}` with data.source feats was refused ("does not apply to data.source
feats"): test_training_from_feats_trains_on_the_masked_batches failed on that error.
"""
import os
import re

import numpy as np
import pytest

from test_data import make_data_dir
from conftest import run_tool_here
from test_train import TINY, make_features
from tfspk.data import SpeakerBalancedSampler, iterate_batches, iterate_validation_batches
from tfspk.data import augment as aug, dsp
from tfspk.errors import ToolError

MASKS = dict(spec_augment=True, num_time_masks=2, max_time_width=9, num_freq_masks=2, max_freq_width=3)
SPEC = "augment={spec_augment: true, num_time_masks: 2, max_time_width: 9, num_freq_masks: 2, max_freq_width: 3}"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Utterances of 12..80 frames of dim 6: with max_frames 40 about a third are tiled by repeat_short."""
    path = tmp_path_factory.mktemp("feats") / "d"
    lengths = list(np.random.default_rng(4).integers(12, 80, 30))
    make_data_dir(path, lengths=lengths, dim_of_archive={0: 6, 1: 6})
    return path


def _samplers(data_dir, seed=5, **masks):
    options = dict(num_speakers=4, min_frames=20, max_frames=40, seed=seed, num_valid_utts=4, repeat_short=True)
    spec = aug.SpecAugment(dict(MASKS, **masks), seed)
    return SpeakerBalancedSampler(data_dir, **options), SpeakerBalancedSampler(data_dir, spec_augment=spec, **options)


def test_the_masks_of_each_crop_are_spec_augment_of_the_tiled_crop(data_dir):
    plain, masked = _samplers(data_dir)
    tiled = changed = 0
    for step in range(12):
        crops, labels = plain.batch(step)
        feats, masked_labels = masked.batch(step)
        np.testing.assert_array_equal(labels, masked_labels)
        plan = plain.plan(step)
        for position, crop in enumerate(crops):
            # the audio path's generator of a crop's masks: SeedSequence([seed, step, position, 1])
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([5, step, position, 1])))
            want = dsp.spec_augment(crop, rng, 2, 9, 2, 3)     # the numpy statement, crop by crop
            np.testing.assert_array_equal(feats[position], want, err_msg=f"step {step} position {position}")
            changed += not np.array_equal(want, crop)
            tiled += plain._utt2num_frames[plan.utts[position]] < plan.length
    assert changed >= 40 and tiled >= 5      # the masks act, and on tiled crops too (masked after the tiling)


def test_the_batch_form_of_the_masks_equals_the_loop_on_edge_cases():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(3, 7, 5)).astype(np.float32) + 5
    time = np.array([[[0, 7], [2, 0]], [[6, 1], [0, 0]], [[3, 2], [4, 2]]])    # whole crop, empty, last frame, overlap
    freq = np.array([[[4, 1]], [[0, 5]], [[1, 0]]])
    want = feats.copy()
    for b in range(3):
        for start, width in time[b]:
            want[b, start:start + width] = 0
        for start, width in freq[b]:
            want[b, :, start:start + width] = 0
    np.testing.assert_array_equal(dsp.apply_spec_augment_masks(feats.copy(), time, freq), want)
    no_masks = np.zeros((3, 0, 2), np.int64)
    np.testing.assert_array_equal(dsp.apply_spec_augment_masks(feats.copy(), no_masks, no_masks), feats)


def test_the_masks_are_a_function_of_seed_step_and_position_only(data_dir):
    _, masked = _samplers(data_dir)
    want = {step: masked.batch(step) for step in range(6)}
    _, again = _samplers(data_dir)              # a resumed run: a new sampler, steps in another order
    for step in reversed(range(6)):
        np.testing.assert_array_equal(again.batch(step)[0], want[step][0])
    for step, (feats, _) in enumerate(iterate_batches(again, 2, num_steps=4, num_threads=2, processes=True), 2):
        np.testing.assert_array_equal(feats, want[step][0])   # forked readers
    for rows in (slice(0, 2), slice(2, 4), slice(1, 3)):      # a replica's share: the same rows
        np.testing.assert_array_equal(again.batch(3, rows)[0], want[3][0][rows])
    plain, other_seed = _samplers(data_dir, seed=5)[0], aug.SpecAugment(MASKS, 6)
    assert not np.array_equal(other_seed(plain.batch(3)[0], 3, range(4)), want[3][0])


def test_validation_batches_are_never_masked(data_dir):
    plain, masked = _samplers(data_dir, max_time_width=40, max_freq_width=6)
    with iterate_validation_batches(plain, 2) as a, iterate_validation_batches(masked, 2) as b:
        pairs = list(zip(a, b))
    assert len(pairs) == 2
    for (want, _), (got, _) in pairs:
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def tiny_features(tmp_path_factory):
    return make_features(str(tmp_path_factory.mktemp("tiny") / "data"))


def test_training_from_feats_trains_on_the_masked_batches(tiny_features, tmp_path, monkeypatch):
    """The batches the training step gets are the masked ones, and the training log says so."""
    from tfspk.train import config as config_mod, train, trainer
    from tfspk.train.inputs import make_sampler
    seen = []
    original = trainer.Trainer.train_step

    def train_step(self, batch):
        seen.append(np.array(batch[0]))
        return original(self, batch)
    monkeypatch.setattr(trainer.Trainer, "train_step", train_step)
    config = config_mod.build_config(None, TINY + [SPEC, "data.repeat_short=true", "schedule.num_epochs=1"])
    exp = tmp_path / "exp"
    train(tiny_features, str(exp), config, stream=open(os.devnull, "w"))
    sampler = make_sampler(tiny_features, config)
    assert sampler.spec_augment is not None and len(seen) == 4
    for step, feats in enumerate(seen):
        np.testing.assert_array_equal(feats, sampler.batch(step)[0])
        assert (feats == 0).all(axis=2).any(), step       # a whole masked frame (widths 0 are rare over 8 masks)
    log = (exp / "log" / "train.log").read_text()
    assert "SpecAugment [Park2019] on every training crop: num_time_masks 2, max_time_width 9" in log
    assert "spec_augment: true" in (exp / "config.yaml").read_text()


@pytest.mark.parametrize("assignment, named", [
    ("augment={noise_dir: data/musan_noise, noise_prob: 0.3}",
     "config keys 'augment.noise_dir' ('data/musan_noise'), 'augment.noise_prob' (0.3) need data.source audio"),
    ("augment={spec_augment: true, speed_factors: '1.0,0.9,1.1'}",
     "config key 'augment.speed_factors' ('1.0,0.9,1.1') needs data.source audio"),
    ("augment.reverb_prob=0.5", "config key 'augment.reverb_prob' (0.5) needs data.source audio"),
    ("augment={rir_dir: data/rirs, reverb_prob: 0.5}", "config keys 'augment.rir_dir' ('data/rirs'), "
                                                        "'augment.reverb_prob' (0.5) need data.source audio"),
    ("augment.num_time_masks=3", "augment: num_time_masks = 3 set, but spec_augment is false"),
])
def test_waveform_options_with_feats_are_one_error_naming_them(tiny_features, tmp_path, assignment, named):
    exp = tmp_path / "exp"
    options = [a for kv in TINY + [assignment] for a in ("--set", kv)]
    failed = run_tool_here(["tfspk-train", *options, tiny_features, exp], check=False)
    err = failed.stderr
    assert failed.returncode == 1 and named in err, err
    if "need" in named:
        assert "with data.source feats the augment section takes only SpecAugment (spec_augment, " in err
    assert "Traceback" not in err and "internal error" not in err
    assert not exp.exists()           # refused before the experiment dir is locked or written


def test_the_feats_check_names_the_waveform_keys_in_the_library_too():
    with pytest.raises(ToolError, match=r"keys 'augment.music_prob' \(0.2\), 'augment.babble_prob' \(0.1\) need "
                                        r"data.source audio"):
        aug.features_only({"music_prob": 0.2, "babble_prob": 0.1, "cache_mb": 256}, 0, "feats")
    assert not aug.features_only({}, 0, "feats").enabled
    assert aug.features_only({"spec_augment": True, "speed_factors": "1.0"}, 0, "feats").enabled   # a default is no option


def test_print_config_documents_the_augment_keys_per_source():
    out = run_tool_here(["tfspk-train", "--print-config"]).stdout
    section = out[out.index("# on-the-fly augmentation"):out.index("\naugment: {}")]
    assert "data.source feats: SpecAugment only" in section
    assert re.search(r"SpecAugment \[Park2019\].*\(data.source feats or audio\):\n#     spec_augment=False, "
                     r"num_time_masks=1, max_time_width=10, num_freq_masks=1, max_freq_width=8\n", section), section
    assert re.search(r"data.source audio only.*\n#     noise_dir='', .*speed_factors='1.0'", section), section

