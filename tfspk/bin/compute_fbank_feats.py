"""tfspk-compute-fbank-feats: Kaldi compute-fbank-feats (kaldi-native-fbank underneath)."""
from tfspk import cli
from tfspk.bin import _compute_feats

USAGE = """tfspk-compute-fbank-feats [options] <wav-rspecifier> <feats-wspecifier>
 e.g.: tfspk-compute-fbank-feats --config=conf/fbank.conf scp:data/train/wav.scp ark,scp:fbank/raw.ark,fbank/raw.scp"""


def _main(argv):
    _compute_feats.run(argv, "fbank", USAGE)


def main():
    cli.run_tool(_main)
