# Job runners used by run.sh (Kaldi convention: "$train_cmd JOB=1:N log/x.JOB.log command").
# run.pl runs the jobs on this machine (at most --max-jobs-run at a time).
export train_cmd="run.pl"
export cuda_cmd="run.pl"

# On a Slurm cluster use slurm.pl instead (options are translated to sbatch), e.g.
#   export train_cmd="slurm.pl --mem 4G"
#   export cuda_cmd="slurm.pl --mem 16G --gpu 1"
# and on GridEngine queue.pl the same way.
