"""tfspk-enroll: speaker models (mean embeddings and utterance counts) from an exported model."""
from tfspk import cli
from tfspk.bin.embed import add_model_options, load_embedder

USAGE = """tfspk-enroll [options] <export-or-exp-dir> <spk2utt> <wav.scp|embeddings-rspecifier> <out-dir>
   or: tfspk-enroll [options] --list=true <export-or-exp-dir> <speaker-list> <out-dir>
Writes <out-dir>/spk_xvector.{ark,scp} (the mean of each speaker's embeddings) and <out-dir>/num_utts.ark
(utterances per speaker), as steps/extract_xvectors.sh writes speaker means. The utterances of <spk2utt>
are embedded from <wav.scp> (or scp:wav.scp), or read from an embeddings table with --vectors=true
(e.g. scp:exp/xvectors_enroll/xvector.scp). With --list=true, <speaker-list> has lines
'<speaker> <wav> [<wav> ...]'. Identify against them with tfspk-identify.
e.g.: tfspk-enroll exp/xvector_nnet/export data/enroll/spk2utt data/enroll/wav.scp exp/speakers"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    add_model_options(parser)
    cli.add_bool(parser, "--vectors", False, "the third argument is an embeddings rspecifier, not a wav.scp")
    cli.add_bool(parser, "--list", False, "the second argument is a list '<speaker> <wav> ...' (no wav.scp)")
    parser.add_argument("model")
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    if len(args.args) != (2 if args.list else 3):
        parser.error("expected <speaker-list> <out-dir> with --list=true, else <spk2utt> <wav.scp> <out-dir>")
    from tfspk.export.commands import enroll
    embedder = load_embedder(args)
    if args.list:
        enroll(embedder, args.args[0], None, args.args[1], file_list=True)
    else:
        enroll(embedder, args.args[0], args.args[1], args.args[2], vectors=args.vectors)


def main():
    cli.run_tool(_main)
