"""tfspk.io: Kaldi files (see docs/io.md). One module per concern:

* :mod:`tfspk.io.xfilename`  rx/wx filenames: ``-``, ``cmd |``, ``| cmd``, ``file:offset``, files;
  the only place that runs commands or touches stdin/stdout bytes; pipes' exit status checked once
* :mod:`tfspk.io.objects`    THE Kaldi object codec (vectors, matrices, tokens, PLDA), binary and text
* :mod:`tfspk.io.compressed` Kaldi compressed matrices (CM/CM2/CM3), byte-exact encoding
* :mod:`tfspk.io.ark`        ark/scp archives: read_rspecifier, ArchiveWriter, read_object, RandomAccessReader
* :mod:`tfspk.io.scalar_table` int32/float tables (num_utts.ark, --write-num-frames, utt2dur)
* :mod:`tfspk.io.table`      text tables (utt2spk, spk2utt, wav.scp, ...), C-locale order; the one trials rule
* :mod:`tfspk.io.audio`      wav.scp values (paths, pipes) and segments
* :mod:`tfspk.io.datadir`    validate/fix/split/subset/copy/combine data directories (one module each)
* :mod:`tfspk.io.atomic`     outputs that appear only when complete
"""
