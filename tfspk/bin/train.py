"""tfspk-train: train an x-vector network with a margin-based softmax loss (see docs/training.md)."""
import sys

from tfspk import cli

USAGE = """tfspk-train [options] <train-data-dir> <exp-dir>
       tfspk-train --print-config
e.g.:  tfspk-train --train-config conf/xvector.yaml --loss amsoftmax --margin 0.2 --aux ring,mhe data/train_combined_no_sil exp/xvector"""

DESCRIPTION = """Train an x-vector network on Kaldi features (feats.scp, utt2spk, utt2num_frames of the data dir).
The experiment config is a YAML file (--train-config x.yaml); every key can be overridden with --set key=value
(dotted keys, YAML values) or the shortcut options below. Re-running the same command resumes from the last
checkpoint in <exp-dir>/ckpt with the same global step. Outputs: <exp-dir>/config.yaml, spk2int, ckpt/,
final/model.weights.h5 (best validation loss), log/train.log, tb/ (TensorBoard)."""

def _main(argv):
    from tfspk.train import config as config_mod
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--train-config", metavar="YAML",
                        help="the experiment config (YAML; see --print-config); --config stays Kaldi's file of options")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optimizer.lr=0.02 (repeatable)")
    parser.add_argument("--loss", help="main loss name (= --set loss.name=NAME)")
    parser.add_argument("--loss-params", help="loss parameters, e.g. 'margin=0.2,scale=30'")
    parser.add_argument("--margin", type=float, help="the loss's margin (= --set loss.params.margin=M)")
    parser.add_argument("--aux", help="auxiliary losses, comma separated (e.g. ring,mhe; 'none' for none)")
    parser.add_argument("--num-epochs", type=int, help="= --set schedule.num_epochs=N")
    parser.add_argument("--steps-per-epoch", type=int, help="= --set schedule.steps_per_epoch=N")
    parser.add_argument("--lr", type=float, help="= --set optimizer.lr=LR")
    parser.add_argument("--seed", type=int, help="= --set seed=N")
    parser.add_argument("--strategy", choices=("auto", "one", "mirrored", "multiworker"),
                        help="tf.distribute strategy (= --set strategy=...)")
    cli.add_bool(parser, "--resume", True, "continue from the last checkpoint in <exp-dir>/ckpt if there is one")
    cli.add_bool(parser, "--print-config", False, "print the default config with comments and exit")
    parser.add_argument("data_dir", nargs="?")
    parser.add_argument("exp_dir", nargs="?")
    args = parser.parse_args(argv)

    if args.print_config:
        from tfspk.train import components
        sys.stdout.write(config_mod.commented_default_config(components.parameter_docs()))
        return 0
    if args.data_dir is None or args.exp_dir is None:
        parser.error("expected <train-data-dir> and <exp-dir>")
    shortcuts = {name: getattr(args, name) for name in config_mod.SHORTCUT_OPTIONS}
    config = config_mod.build_config(args.train_config, config_mod.shortcut_overrides(**shortcuts) + list(args.set))
    from tfspk.train import train
    result = train(args.data_dir, args.exp_dir, config, resume=args.resume)
    if result.stopped_early:
        cli.log(f"stopped early: {result.stopped_early}")
    return 0


def main():
    cli.run_tool(_main)


if __name__ == "__main__":
    main()
