"""tfspk-import-model: convert another toolkit's trained speaker-embedding checkpoint into a finished tfspk experiment dir."""
from tfspk import cli
from tfspk.params import yaml_value

USAGE = """tfspk-import-model [options] --source=<name> <checkpoint> <exp-dir>
Writes <exp-dir> (config.yaml with the network and its params; features.yaml with the source's front end
at inference: feature type and options, mean normalisation, VAD; final/model.weights.h5 and
final/DONE), usable by
steps/extract_xvectors.sh, tfspk-export, tfspk-embed and tfspk.Embedder. Every tensor of the
checkpoint is mapped or named as deliberately unused (the training loss's class weights); anything
else is an error. The checkpoint's pickle is read without PyTorch and never executed.
--source names a registered source (run without arguments to list them; docs/import.md); its options
are given with --param name=value and listed by --help-source NAME.
e.g.: tfspk-import-model --source=wespeaker_resnet voxceleb_resnet34/avg_model.pt exp/wespeaker_resnet34"""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=__doc__)
    parser.add_argument("--source", default=None, help="the checkpoint's toolkit and model family (see above)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="an option of the source, e.g. --param arch=resnet34 (repeatable)")
    parser.add_argument("--help-source", default=None, metavar="NAME", help="list the options of a source and exit")
    cli.add_bool(parser, "--overwrite", False, "replace an existing non-empty <exp-dir>")
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument("exp_dir", nargs="?")
    args = parser.parse_args(argv)
    from tfspk.errors import ToolError
    from tfspk import importers
    from tfspk.importers.registry import describe_source
    if args.help_source:
        print(describe_source(args.help_source))
        return
    if args.source is None or args.exp_dir is None:
        parser.error("give --source=<name>, <checkpoint> and <exp-dir>; sources: " + importers.source_names_listing())
    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ToolError(f"--param: expected name=value, got '{item}'")
        params[name.strip()] = yaml_value(value)
    source = importers.get_source(args.source, params)
    imported = source.convert(args.checkpoint)
    from tfspk.importers.expdir import write_experiment
    config = write_experiment(args.exp_dir, imported, overwrite=args.overwrite)
    cli.log(f"converted {args.checkpoint} ({source.source_name}) into {args.exp_dir}: network "
            f"{config['nnet']['name']}, {config['feat_dim']}-dim {imported.front_end.feature_type} at "
            f"{imported.front_end.sample_rate:g} Hz (CMN {imported.front_end.cmn}, VAD "
            f"{'on' if imported.front_end.vad else 'off'}), {len(imported.weights)} weights"
            + (f"; unused tensors: {', '.join(sorted(imported.ignored))}" if imported.ignored else ""))


def main():
    cli.run_tool(_main)
