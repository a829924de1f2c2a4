"""tfspk-compute-mfcc-feats: Kaldi compute-mfcc-feats (kaldi-native-fbank underneath)."""
from tfspk import cli
from tfspk.bin import _compute_feats

USAGE = """tfspk-compute-mfcc-feats [options] <wav-rspecifier> <feats-wspecifier>
 e.g.: tfspk-compute-mfcc-feats --config=conf/mfcc.conf scp:data/train/wav.scp ark,scp:mfcc/raw.ark,mfcc/raw.scp"""


def _main(argv):
    _compute_feats.run(argv, "mfcc", USAGE)


def main():
    cli.run_tool(_main)
