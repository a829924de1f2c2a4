"""tfspk.io.audio: wav.scp paths and pipes, segments, bad audio."""
import numpy as np
import pytest
import soundfile as sf

from conftest import synth_speech
from tfspk.errors import ToolError
from tfspk.io import audio


def test_path_and_pipe_give_int16_scale(make_wav):
    path = make_wav("a.wav", seconds=0.5, rate=8000)
    expected = synth_speech(0.5, 8000).astype(np.float32)
    samples, rate = audio.read_audio(str(path))
    assert rate == 8000 and samples.dtype == np.float32 and np.array_equal(samples, expected)
    piped, rate = audio.read_audio(f"cat {path} |")
    assert rate == 8000 and np.array_equal(piped, expected)


def test_segment_cut_truncates_sample_indices_like_extract_segments(make_wav):
    path = make_wav("a.wav", seconds=1.0, rate=8000)
    full, _ = audio.read_audio(str(path))
    part, _ = audio.read_audio(str(path), segment=(0.10009, 0.2999))    # 800.72 -> 800, 2399.2 -> 2399
    assert np.array_equal(part, full[800:2399])
    whole, _ = audio.read_audio(str(path), segment=(0.5, -1))
    assert np.array_equal(whole, full[4000:])
    clipped, _ = audio.read_audio(str(path), segment=(0.7, 1.2))     # 0.2 s overshoot allowed
    assert np.array_equal(clipped, full[5600:])
    for segment, reason in [((0.5, 1.6), "ends more than 0.5 s after"), ((1.0, 1.2), "start is outside"),
                            ((0.3, 0.3), "too short")]:
        with pytest.raises(ToolError, match=reason):
            audio.read_audio(str(path), segment=segment)
    assert len(audio.cut_segment(full, 8000, 0.2, 0.3002, min_seconds=0.1)) == 801
    with pytest.raises(ToolError, match="too short .not longer than 0.1 s"):
        audio.cut_segment(full, 8000, 0.2, 0.3, min_seconds=0.1)


def test_bad_audio(tmp_path):
    with pytest.raises(ToolError, match="audio file not found: .*nope.wav"):
        audio.read_audio(str(tmp_path / "nope.wav"))
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ToolError, match="empty"):
        audio.read_audio(str(tmp_path / "empty.wav"))
    (tmp_path / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(ToolError, match="junk.wav: not a readable audio file"):
        audio.read_audio(str(tmp_path / "junk.wav"))
    sf.write(str(tmp_path / "zero.wav"), np.zeros(0, np.int16), 8000, subtype="PCM_16")
    with pytest.raises(ToolError, match="empty"):
        audio.read_audio(str(tmp_path / "zero.wav"))
    with pytest.raises(ToolError, match="command 'exit 2' failed with exit status 2"):
        audio.read_audio("exit 2 |")
    with pytest.raises(ToolError, match="produced no audio"):
        audio.read_audio("true |")


def test_iter_data_dir_audio_with_segments(tmp_path, make_wav):
    a = make_wav("a.wav", seconds=1.0, rate=8000, seed=1)
    b = make_wav("b.wav", seconds=1.0, rate=8000, seed=2)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"recA {a}\nrecB cat {b} |\n")
    (data / "segments").write_text("s1 recA 0 0.5\ns2 recA 0.5 1.0\ns3 recB 0.25 0.75\n")
    got = {utt: s for utt, s, r in audio.iter_data_dir_audio(data)}
    full_a = synth_speech(1.0, 8000, seed=1).astype(np.float32)
    full_b = synth_speech(1.0, 8000, seed=2).astype(np.float32)
    assert np.array_equal(got["s1"], full_a[:4000]) and np.array_equal(got["s2"], full_a[4000:])
    assert np.array_equal(got["s3"], full_b[2000:6000])
    (data / "segments").write_text("s1 recA 0 0.05\ns2 recA 0 0.5\n")         # s1 is too short: skipped
    assert [utt for utt, _, _ in audio.iter_data_dir_audio(data)] == ["s2"]
    (data / "segments").write_text("s1 recX 0 0.5\n")
    with pytest.raises(ToolError, match="segments:1: recording 'recX' of segment 's1'"):
        list(audio.iter_data_dir_audio(data))


def test_iter_data_dir_audio_names_the_failing_entry(tmp_path, make_wav):
    a = make_wav("a.wav", seconds=0.2, rate=8000)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {a}\nu2 sox missing.wav -t wav - 2>/dev/null; exit 3 |\n")
    got = audio.iter_data_dir_audio(data)
    assert next(got)[0] == "u1"
    with pytest.raises(ToolError, match="wav.scp entry 'u2': command .* failed with exit status 3"):
        next(got)


@pytest.mark.parametrize("size_field", [0, 0xFFFFFFFF])
def test_wav_streamed_to_a_pipe_with_unknown_sizes(tmp_path, size_field):
    """Writers that cannot seek (sox/ffmpeg to stdout) leave 0 or 0xFFFFFFFF as sizes; Kaldi reads to EOF."""
    import io
    import struct
    expected = synth_speech(0.1, 8000)
    buffer = io.BytesIO()
    sf.write(buffer, expected, 8000, subtype="PCM_16", format="WAV")
    raw = bytearray(buffer.getvalue())
    data_at = raw.index(b"data")
    raw[4:8] = struct.pack("<I", size_field)
    raw[data_at + 4:data_at + 8] = struct.pack("<I", size_field)
    (tmp_path / "s.wav").write_bytes(bytes(raw))
    samples, rate = audio.read_audio(f"cat {tmp_path}/s.wav |")
    assert rate == 8000 and np.array_equal(samples, expected.astype(np.float32))

