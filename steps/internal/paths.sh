# Sourced first by every steps/*.sh, as
#   . "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"
# (readlink -f: the script's real location, also when reached through a symlinked steps/ dir or a symlink to
# the file itself). Sets tfspk_steps and utils (tfspk's steps/ and utils/, absolute) and appends utils/ to PATH,
# so a recipe of another toolkit that calls these scripts needs neither on its PATH (run.pl, queue.pl,
# slurm.pl given as --cmd are found); a caller's own run.pl on PATH (Kaldi's) comes first.
tfspk_steps=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
utils=$(cd -P "$tfspk_steps/../utils" && pwd)
export PATH=$PATH:$utils
