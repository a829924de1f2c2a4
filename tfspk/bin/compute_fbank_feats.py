"""tfspk-compute-fbank-feats: Kaldi compute-fbank-feats (kaldi-native-fbank underneath)."""
from tfspk.bin import _compute_feats

USAGE = """tfspk-compute-fbank-feats [options] <wav-rspecifier> <feats-wspecifier>
 e.g.: tfspk-compute-fbank-feats --config=conf/fbank.conf scp:data/train/wav.scp ark,scp:fbank/raw.ark,fbank/raw.scp"""

_main, main = _compute_feats.entry_points("fbank", USAGE)
