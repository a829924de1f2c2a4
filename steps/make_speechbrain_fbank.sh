#!/usr/bin/env bash
# Compute SpeechBrain's Fbank features (the speechbrain_fbank feature type of an imported SpeechBrain model,
# docs/import.md) for a data directory, with the layout and options of steps/make_fbank.sh:
# <data-dir>/feats.scp (+ utt2num_frames, utt2dur, frame_shift, conf/speechbrain_fbank.conf), archives in
# <speechbrain-fbank-dir>, one log per job in <log-dir>/make_speechbrain_fbank_<name>.JOB.log. Each job is one
# tfspk-compute-speechbrain-fbank-feats process (Kaldi has no such binary: --use-kaldi true is refused).
# The config: tfspk-front-end-conf <exp-dir> <conf-dir> writes <conf-dir>/features.conf from the model's front end.
feat=speechbrain_fbank
feat_name="SpeechBrain filterbank"
speechbrain_fbank_config=conf/speechbrain_fbank.conf
kaldi_has_binary=false
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/internal/paths.sh"   # tfspk_steps, utils (on PATH)
. "$tfspk_steps/internal/make_feats_body.sh"
