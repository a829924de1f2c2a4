"""tfspk-ivector-mean: Kaldi ivector-mean (global mean vector, or per-speaker means)."""
from tfspk import cli
from tfspk.backend import kaldi_objects, tables, vectors
from tfspk.errors import ToolError

USAGE = """tfspk-ivector-mean [options] <ivector-rspecifier> <mean-wxfilename>
   or: tfspk-ivector-mean [options] <spk2utt-rspecifier> <ivector-rspecifier> <ivector-wspecifier> [<num-utt-wspecifier>]
e.g.: tfspk-ivector-mean scp:exp/xvectors_train/xvector.scp exp/xvectors_train/mean.vec
      tfspk-ivector-mean ark:data/spk2utt scp:xvector.scp ark,scp:spk_xvector.ark,spk_xvector.scp ark,t:num_utts.ark"""


def _global_mean(args):
    keys, matrix = tables.load_vectors(args.args[0])
    mean = vectors.global_mean(matrix)
    kaldi_objects.write_vector(args.args[1], mean, binary=args.binary, double=True)
    cli.log(f"Wrote mean of {len(keys)} vectors to {args.args[1]}")


def _speaker_means(args):
    spk2utt_rspec, ivector_rspec, ivector_wspec = args.args[:3]
    num_utts_wspec = args.args[3] if len(args.args) == 4 else None
    spk2utt = tables.read_spk2utt(spk2utt_rspec)
    keys, matrix = tables.load_vectors(ivector_rspec)
    by_key = dict(zip(keys, matrix))
    speakers, means, counts, missing = vectors.speaker_means(spk2utt, by_key)
    for utt in missing:
        cli.warn(f"No iVector present in input for utterance {utt}")
    for speaker, utts in spk2utt.items():
        if not any(u in by_key for u in utts):
            cli.warn(f"Not producing output for speaker {speaker} since no utterances had iVectors")
    if not speakers:
        raise ToolError(f"no speaker of {spk2utt_rspec} has any vector in {ivector_rspec}")
    tables.write_vectors(ivector_wspec, speakers, means)
    if num_utts_wspec:
        tables.write_int32_table(num_utts_wspec, list(zip(speakers, counts.tolist())))
    cli.log(f"Computed mean of {len(speakers)} speakers ({len(spk2utt) - len(speakers)} with no "
            f"utterances), consisting of {int(counts.sum())} utterances ({len(missing)} absent from input).")


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Average vectors: all of them (2 arguments) or per speaker.")
    cli.add_bool(parser, "--binary", False, "write the mean vector in binary (2-argument form; Kaldi's default is text)")
    parser.add_argument("args", nargs="+", metavar="ARG")
    args = parser.parse_args(argv)
    if len(args.args) == 2:
        _global_mean(args)
    elif len(args.args) in (3, 4):
        _speaker_means(args)
    else:
        parser.error(f"expected 2, 3 or 4 arguments, got {len(args.args)}")


def main():
    cli.run_tool(_main)
