"""tfspk.io: Kaldi files (see docs/io.md).

* :mod:`tfspk.io.table`    text tables (utt2spk, spk2utt, wav.scp, trials, ...), C-locale order
* :mod:`tfspk.io.ark`      ark/scp archives: read_rspecifier, ArchiveWriter, read_object, RandomAccessReader
* :mod:`tfspk.io.compressed` Kaldi compressed matrices (CM/CM2/CM3), byte-exact encoding
* :mod:`tfspk.io.audio`    wav.scp values (paths, pipes) and segments
* :mod:`tfspk.io.datadir`  validate/fix/split/subset/copy/combine data directories
* :mod:`tfspk.io.atomic`   outputs that appear only when complete
"""
