"""tfspk-ivector-compute-plda: Kaldi ivector-compute-plda (two-covariance PLDA by EM)."""
import numpy as np

from tfspk import cli
from tfspk.backend import plda, tables

USAGE = """tfspk-ivector-compute-plda [options] <spk2utt-rspecifier> <ivector-rspecifier> <plda-out>
e.g.: tfspk-ivector-compute-plda ark:data/train/spk2utt ark,s,cs:ivectors.ark plda"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description="Train a PLDA model (Kaldi's two-covariance EM) from "
                                     "vectors grouped by speaker with spk2utt.")
    parser.add_argument("--num-em-iters", type=int, default=10,
                        help="number of iterations of E-M used for PLDA estimation (default: 10)")
    cli.add_bool(parser, "--binary", True, "write output in binary mode")
    parser.add_argument("spk2utt_rspecifier")
    parser.add_argument("ivector_rspecifier")
    parser.add_argument("plda_wxfilename")
    args = parser.parse_args(argv)
    spk2utt = tables.read_spk2utt(args.spk2utt_rspecifier)
    keys, matrix = tables.load_vectors(args.ivector_rspecifier)
    row_of = {key: i for i, key in enumerate(keys)}
    groups, num_missing, num_spk_err = [], 0, 0
    for speaker, utts in spk2utt.items():
        rows = [row_of[u] for u in utts if u in row_of]
        for utt in (u for u in utts if u not in row_of):
            cli.warn(f"No iVector present in input for utterance {utt}")
            num_missing += 1
        if rows:
            groups.append(matrix[np.array(rows)])
        else:
            cli.warn(f"Not producing output for speaker {speaker} since no utterances had iVectors")
            num_spk_err += 1
    num_utts = sum(len(g) for g in groups)
    cli.log(f"Accumulated stats from {len(groups)} speakers ({num_spk_err} with no utterances), consisting "
            f"of {num_utts} utterances ({num_missing} absent from input).")
    stats = plda.PldaStats.from_groups(groups)
    model = plda.estimate_plda(stats, args.num_em_iters, log=cli.log, warn=cli.warn)
    cli.log(f"Diagonal of between-class variance in normalized space is {np.array2string(model.psi, precision=4)}")
    model.write(args.plda_wxfilename, binary=args.binary)


def main():
    cli.run_tool(_main)
