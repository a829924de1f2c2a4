"""tfspk-perturb-data-dir-speed: a speed-perturbed copy of a data dir (Kaldi utils/data/perturb_data_dir_speed.sh)."""
from tfspk import cli
from tfspk.data.perturb_data_dir import MAX_FACTOR, MIN_FACTOR, parse_factor, perturb_data_dir_speed, prefix_of

USAGE = "tfspk-perturb-data-dir-speed [--wav-dir <dir>] <factor> <srcdir> <destdir>"
DESCRIPTION = f"""Writes <destdir>: every utterance of <srcdir>/wav.scp played <factor> times faster (tempo and pitch,
as 'sox speed'), as 16-bit WAV files at the source's rate in --wav-dir (default <destdir>/wav); utterance and
speaker ids prefixed with sp<factor>- (Kaldi's); utt2dur of the new audio; utt2uniq; the source's labels (text,
utt2lang, spk2gender, spk2lang, ...) with the new ids. The factor is in [{MIN_FACTOR:g}, {MAX_FACTOR:g}] and not 1.
Data dirs with segments are not supported. Features are not copied: compute them on <destdir>."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--wav-dir", default="", help="where the audio files go (default: <destdir>/wav)")
    parser.add_argument("--progress-every", type=int, default=500,
                        help="a progress line every this many utterances (and every 30 s; default: 500)")
    args = parser.parse(argv, "factor", "srcdir", "destdir")
    factor = parse_factor(args.factor)
    progress = cli.Progress(None, "utterances", every=max(args.progress_every, 0), interval=30.0)

    def report(done, total):
        progress.total = total
        if progress.due(done):
            cli.log(progress.line(done))

    summary = perturb_data_dir_speed(args.srcdir, args.destdir, factor, wav_dir=args.wav_dir or None,
                                     log=cli.log, progress=report)
    if summary.clipped:
        cli.warn(f"{summary.clipped} output samples were clipped to the 16-bit range")
    if summary.dropped:
        cli.log(f"not carried (they describe the unperturbed audio, or are unknown): {' '.join(summary.dropped)}")
    cli.log(f"{summary.utterances} utterances of {summary.speakers} speakers ({summary.seconds_in:.1f} s) -> "
            f"{summary.seconds_out:.1f} s at speed {factor:g} in {args.destdir} (ids {prefix_of(factor)}*; "
            f"carried: {' '.join(summary.carried) or 'no side tables'})")


def main():
    cli.run_tool(_main)
