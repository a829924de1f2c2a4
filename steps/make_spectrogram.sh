#!/usr/bin/env bash
# Compute log power spectrograms for a data directory, as Kaldi's steps/make_fbank.sh does for fbank
# (Kaldi has no make_spectrogram.sh; this one follows the same layout and options):
# <data-dir>/feats.scp (+ utt2num_frames, utt2dur, frame_shift, conf/spectrogram.conf), archives in
# <spectrogram-dir>, one log per job in <log-dir>/make_spectrogram_<name>.JOB.log.
# With --use-kaldi false (default) each job is one tfspk-compute-spectrogram-feats process; with
# --use-kaldi true it runs Kaldi's [extract-segments |] compute-spectrogram-feats | copy-feats pipeline.
# A 20 ms window at 16 kHz with --round-to-power-of-two=false gives the 161 bins of [Zhou2020].
feat=spectrogram
feat_name="spectrogram"
spectrogram_config=conf/spectrogram.conf
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)
. "$tfspk_steps/internal/make_feats_body.sh"
