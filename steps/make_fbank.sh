#!/usr/bin/env bash
# Compute filterbank features for a data directory, as Kaldi's steps/make_fbank.sh:
# <data-dir>/feats.scp (+ utt2num_frames, utt2dur, frame_shift, conf/fbank.conf), archives in
# <fbank-dir>, one log per job in <log-dir>/make_fbank_<name>.JOB.log.
# With --use-kaldi false (default) each job is one tfspk-compute-fbank-feats process (features,
# compression, frame counts and durations in one pass); with --use-kaldi true it runs Kaldi's
# [extract-segments |] compute-fbank-feats | copy-feats pipeline.
# Nothing half-made is left looking complete: the old feats.scp is moved to <data-dir>/.backup
# first, per-job archives appear only when their job succeeds, and the combined files are
# written under temporary names and moved into place after every job has succeeded.
feat=fbank
feat_name="filterbank"
fbank_config=conf/fbank.conf
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)
. "$tfspk_steps/internal/make_feats_body.sh"
