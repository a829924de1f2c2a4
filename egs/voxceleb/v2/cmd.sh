# Job runners used by run.sh (Kaldi convention: "$train_cmd JOB=1:N log/x.JOB.log command").
# Default: run.pl, the jobs run on this machine (at most one per CPU at a time).
export train_cmd="run.pl"
export cuda_cmd="run.pl"

# Slurm (uncomment; the options are translated to sbatch through utils/slurm.conf):
# export train_cmd="slurm.pl --mem 4G"
# export cuda_cmd="slurm.pl --mem 16G --gpu 1"
# GridEngine: the same with queue.pl (utils/queue.conf).
