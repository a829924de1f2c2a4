"""tfspk-compute-speechbrain-fbank-feats: SpeechBrain's Fbank (the speechbrain_fbank feature type) of a wav.scp."""
from tfspk.bin import _compute_feats

USAGE = """tfspk-compute-speechbrain-fbank-feats [options] <wav-rspecifier> <feats-wspecifier>
 e.g.: tfspk-compute-speechbrain-fbank-feats --config=conf/speechbrain_fbank.conf scp:data/eval/wav.scp \\
         ark,scp:fbank/raw.ark,fbank/raw.scp"""

DESCRIPTION = """Compute SpeechBrain's Fbank features (the speechbrain_fbank feature type, docs/import.md: Kaldi has no
such binary) for each utterance of a wav.scp, with the options and outputs of the compute-*-feats tools
(audio is fed on the int16 scale as Kaldi reads it; --allow-downsample/--allow-upsample resample it).""" \
    + _compute_feats.ADDITIONS

_main, main = _compute_feats.entry_points("speechbrain_fbank", USAGE, DESCRIPTION)
