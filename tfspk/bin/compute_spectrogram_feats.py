"""tfspk-compute-spectrogram-feats: Kaldi compute-spectrogram-feats (numpy restatement of Kaldi's code)."""
from tfspk import cli
from tfspk.bin import _compute_feats

USAGE = """tfspk-compute-spectrogram-feats [options] <wav-rspecifier> <feats-wspecifier>
 e.g.: tfspk-compute-spectrogram-feats --config=conf/spectrogram.conf scp:data/train/wav.scp ark,scp:spec/raw.ark,spec/raw.scp"""


def _main(argv):
    _compute_feats.run(argv, "spectrogram", USAGE)


def main():
    cli.run_tool(_main)
