"""tfspk-train: train an x-vector network with a margin-based softmax loss (see docs/training.md)."""
import sys

from tfspk import cli
from tfspk.errors import ToolError

USAGE = """tfspk-train [options] <train-data-dir> <exp-dir>
       tfspk-train --print-config
e.g.:  tfspk-train --config conf/xvector.yaml --loss amsoftmax --margin 0.2 --aux ring,mhe data/train_combined_no_sil exp/xvector"""

DESCRIPTION = """Train an x-vector network on Kaldi features (feats.scp, utt2spk, utt2num_frames of the data dir).
The experiment config is a YAML file (--config x.yaml); every key can be overridden with --set key=value
(dotted keys, YAML values) or the shortcut options below. Re-running the same command resumes from the last
checkpoint in <exp-dir>/ckpt with the same global step. Outputs: <exp-dir>/config.yaml, spk2int, ckpt/,
final/model.weights.h5 (best validation loss), log/train.log, tb/ (TensorBoard)."""

_YAML_SUFFIXES = (".yaml", ".yml", ".json")


def _split_yaml_config(argv):
    """``--config x.yaml`` is the experiment config; other ``--config`` files stay Kaldi option files."""
    rest, yaml_configs = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = None
        if arg == "--config" and i + 1 < len(argv):
            value, step = argv[i + 1], 2
        elif arg.startswith("--config="):
            value, step = arg.split("=", 1)[1], 1
        if value is not None and value.lower().endswith(_YAML_SUFFIXES):
            yaml_configs.append(value)
            i += step
            continue
        rest.append(arg)
        i += 1
    return rest, yaml_configs


def _shortcut_overrides(args):
    from tfspk.train.config import parse_params
    overrides = []
    if args.loss is not None:
        overrides.append(f"loss.name={args.loss}")
    if args.loss_params:
        for name, value in parse_params(args.loss_params, "--loss-params").items():
            overrides.append(f"loss.params.{name}={value!r}" if isinstance(value, str) else f"loss.params.{name}={value}")
    if args.margin is not None:
        overrides.append(f"loss.params.margin={args.margin}")
    if args.aux is not None:
        names = [n.strip() for n in args.aux.split(",") if n.strip() and n.strip().lower() != "none"]
        overrides.append("aux=[" + ", ".join(f"{{name: {n}}}" for n in names) + "]")
    for option, key in (("num_epochs", "schedule.num_epochs"), ("steps_per_epoch", "schedule.steps_per_epoch"),
                        ("lr", "optimizer.lr"), ("seed", "seed"), ("strategy", "strategy")):
        value = getattr(args, option)
        if value is not None:
            overrides.append(f"{key}={value}")
    return overrides


def _main(argv):
    argv, yaml_configs = _split_yaml_config(argv)
    if len(yaml_configs) > 1:
        raise ToolError(f"give one experiment config, got {', '.join(yaml_configs)}")
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
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

    from tfspk.train import config as config_mod
    if args.print_config:
        from tfspk.train import components
        sys.stdout.write(config_mod.commented_default_config(components.parameter_docs()))
        return 0
    if args.data_dir is None or args.exp_dir is None:
        parser.error("expected <train-data-dir> and <exp-dir>")
    overrides = _shortcut_overrides(args) + list(args.set)
    config = config_mod.build_config(yaml_configs[0] if yaml_configs else None, overrides)
    from tfspk.train import trainer
    result = trainer.train(args.data_dir, args.exp_dir, config, resume=args.resume)
    if result.stopped_early:
        cli.log(f"stopped early: {result.stopped_early}")
    return 0


def main():
    cli.run_tool(_main)


if __name__ == "__main__":
    main()
