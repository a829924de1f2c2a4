"""tfspk-compute-spectrogram-feats: Kaldi compute-spectrogram-feats (numpy restatement of Kaldi's code)."""
from tfspk.bin import _compute_feats

USAGE = """tfspk-compute-spectrogram-feats [options] <wav-rspecifier> <feats-wspecifier>
 e.g.: tfspk-compute-spectrogram-feats --config=conf/spectrogram.conf scp:data/train/wav.scp ark,scp:spec/raw.ark,spec/raw.scp"""

_main, main = _compute_feats.entry_points("spectrogram", USAGE)
