"""egs/voxceleb/v2/local/filter_by_voiced_frames.py: stage 3's length filter for run.sh --aug online."""
import numpy as np
import pytest

from conftest import REPO, run
from tfspk.io.ark import ArchiveWriter

SCRIPT = REPO / "egs" / "voxceleb" / "v2" / "local" / "filter_by_voiced_frames.py"


def expected_kept(utt2spk, vad, min_len, min_num_utts):
    """The rule of steps/prepare_feats_for_egs.sh, stated again: voiced = frames with vad != 0
    (select-voiced-frames); keep utterances with voiced > min_len, then speakers with at least
    min_num_utts such utterances."""
    long_enough = {u: s for u, s in utt2spk.items() if u in vad and np.sum(vad[u] != 0) > min_len}
    counts = {}
    for s in long_enough.values():
        counts[s] = counts.get(s, 0) + 1
    return sorted(u for u, s in long_enough.items() if counts[s] >= min_num_utts)


def make_dir(path, rng):
    path.mkdir()
    utt2spk, vad = {}, {}
    for spk in range(5):
        for k in range(spk + 1):                                     # speaker s has s + 1 utterances
            utt = f"spk{spk}-u{k}"
            utt2spk[utt] = f"spk{spk}"
            if (spk, k) != (4, 0):                                   # one utterance without VAD
                vad[utt] = (rng.random(rng.integers(20, 200)) < 0.6).astype(np.float32)
    vad["spk3-u0"] = np.r_[np.ones(30), np.zeros(10)].astype(np.float32)   # exactly 30 voiced: dropped at 30
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    (path / "wav.scp").write_text("".join(f"{u} /audio/{u}.wav\n" for u in sorted(utt2spk)))
    with ArchiveWriter(f"ark,scp:{path}/vad.ark,{path}/vad.scp") as writer:
        for utt in sorted(vad):
            writer.write(utt, vad[utt])
    return utt2spk, vad


@pytest.mark.parametrize("min_len, min_num_utts", [(30, 2), (0, 1), (20, 3)])
def test_filter_keeps_what_stage_3_keeps(tmp_path, min_len, min_num_utts):
    utt2spk, vad = make_dir(tmp_path / "in", np.random.default_rng(min_len))
    run([str(SCRIPT), "--min-len", str(min_len), "--min-num-utts", str(min_num_utts),
         str(tmp_path / "in"), str(tmp_path / "out")])
    kept = sorted(line.split()[0] for line in (tmp_path / "out" / "utt2spk").read_text().splitlines())
    assert kept == expected_kept(utt2spk, vad, min_len, min_num_utts)
    assert 0 < len(kept) < len(utt2spk)
    assert sorted(line.split()[0] for line in (tmp_path / "out" / "wav.scp").read_text().splitlines()) == kept
    assert "spk4-u0" not in kept                                         # no VAD entry


def test_filter_errors(tmp_path):
    make_dir(tmp_path / "in", np.random.default_rng(0))
    proc = run([str(SCRIPT), "--min-len", "1000", str(tmp_path / "in"), str(tmp_path / "out")], check=False)
    assert proc.returncode != 0 and "no utterance of" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "in" / "vad.scp").unlink()
    proc = run([str(SCRIPT), str(tmp_path / "in"), str(tmp_path / "out")], check=False)
    assert proc.returncode != 0 and "vad.scp not found" in proc.stderr
