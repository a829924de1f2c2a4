"""tfspk-compute-mfcc-feats: Kaldi compute-mfcc-feats (kaldi-native-fbank underneath)."""
from tfspk.bin import _compute_feats

USAGE = """tfspk-compute-mfcc-feats [options] <wav-rspecifier> <feats-wspecifier>
 e.g.: tfspk-compute-mfcc-feats --config=conf/mfcc.conf scp:data/train/wav.scp ark,scp:mfcc/raw.ark,mfcc/raw.scp"""

_main, main = _compute_feats.entry_points("mfcc", USAGE)
