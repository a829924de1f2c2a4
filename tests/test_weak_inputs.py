"""Weak inputs get a word: implausible augmentation SNRs, truncated audio counted per step, a stray word in
run.sh --train-opts named (tfspk.data.ranges, steps/internal/checks.sh report_job_warnings)."""
from __future__ import annotations

import pytest

from tfspk.data.augment import Augmenter
from tfspk.data.ranges import SNR_RANGE_DB
from tfspk.errors import ToolError


@pytest.mark.parametrize("key, text, bad", [("noise_snrs", "15:-200:400", "-200"), ("music_snrs", "5:80", "80"),
                                            ("babble_snrs", "-21", "-21")])
def test_snrs_are_range_checked_as_speed_factors_and_probabilities_are(key, text, bad):
    """Before: augment.noise_snrs=15:-200:400 was accepted (noise 10^20 times the speech)."""
    with pytest.raises(ToolError, match=rf"augment: {key}: SNR {bad} dB is outside \[-20, 60\] dB \(in '{text}'\)"):
        Augmenter({key: text}, sample_rate=8000)
    low, high = SNR_RANGE_DB
    Augmenter({key: f"{low:g}:{high:g}:0"}, sample_rate=8000)      # the bounds themselves are fine
    with pytest.raises(ToolError, match=r"speed_factors: 3 is outside \[0.5, 2\]"):   # the rule SNRs now follow
        Augmenter({"speed_factors": "1.0,3"}, sample_rate=8000)


def test_truncated_wavs_are_counted_at_the_end_of_the_step(tmp_path):
    """make_mfcc.sh and make_shards.sh over a data dir with two truncated wavs: the step's own output says how
    many warnings its jobs logged (before: only inside the job logs, behind "Succeeded")."""
    from conftest import run
    from test_steps_features import make_corpus
    data = make_corpus(tmp_path)
    for utt in ("spk1-u1", "spk4-u0"):
        path = tmp_path / "wav" / f"{utt}.wav"
        path.write_bytes(path.read_bytes()[:-1000])
    out = run("make_mfcc.sh --nj 2 --mfcc-config conf/mfcc.conf data/train exp/make_mfcc mfcc", cwd=tmp_path)
    assert "Succeeded creating MFCC features for train" in out.stdout
    assert ("make_mfcc.sh: 2 warning(s) in the job logs exp/make_mfcc/make_mfcc_train.*.log, 2 of them about "
            "truncated audio") in out.stdout, out.stdout
    assert "Truncated file?" in out.stdout
    shards = run(f"make_shards.sh --source audio --utts-per-shard 4 {data} {tmp_path}/shards", cwd=tmp_path)
    assert f"2 warning(s) in the job logs {tmp_path}/shards/log/make_shards.log, 2 of them about truncated" in shards.stdout
    (tmp_path / "clean").mkdir()
    clean_data = make_corpus(tmp_path / "clean")
    clean = run(f"make_shards.sh --source audio --utts-per-shard 4 {clean_data} {tmp_path}/shards2", cwd=tmp_path)
    assert "warning(s) in the job logs" not in clean.stdout


def test_a_stray_word_is_named_not_only_the_usage(repo):
    """run.sh --train-opts "--set 'a=1 b=2'" (split at spaces: the word b=2' is left over): before, only a usage
    text was printed, by steps/train_xvector.sh at stage 3; now run.sh refuses the quotes at once and
    train_xvector.sh names the stray word."""
    from conftest import run
    proc = run(["bash", "steps/train_xvector.sh", "--set", "'a=1", "b=2'", "data/x", "exp/y"], cwd=repo, check=False)
    assert proc.returncode == 1 and "Usage:" in proc.stderr
    assert ("steps/train_xvector.sh: expected 2 arguments (<train-data-dir> <exp-dir>) after the options, got 3: "
            "stray word(s) 'b=2''") in proc.stderr, proc.stderr
    proc = run(["./run.sh", "--train-opts", "--set 'a=1 b=2'"], cwd=repo / "egs/demo/v2", check=False)
    assert proc.returncode == 1
    assert ("""--train-opts "--set 'a=1 b=2'": quotes are not honoured (the value is split at spaces into: [--set] """
            """['a=1] [b=2'])""") in proc.stderr, proc.stderr
