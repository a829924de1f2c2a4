"""Every registered network through the tools: tfspk.train.train -> experiment dir -> tfspk.extract,
tfspk-nnet-info, and the extraction errors (short utterances, feature dimension, wrong config)."""
import os
import re
import shutil

import numpy as np
import pytest
import yaml

from conftest import run
from test_train import make_features
from tfspk.errors import ToolError
from tfspk.train import build_config, train

# Small widths: same code paths as full size (the feature dims satisfy resnet's multiple of 8, rescnn's >= 16).
# resnet18 for the ResNets: resnet34/50 are the same class with another stage table, and resnet18 has the fewest
# layers to trace in each tfspk.train call. ECAPA-TDNN with 2 Res2 branches: saving, loading and extracting do not
# depend on their number, and each branch is traced in training and extraction (the additions of scale >= 3 are
# trained in tests/test_nnet_networks.py and exported in tests/test_export.py).
SMALL = {
    "tdnn": {"frame_dim": 16, "pooling_dim": 24, "embedding_dim": 8},
    "ecapa_tdnn": {"channels": 16, "scale": 2, "se_channels": 8, "mfa_channels": 24, "attention_channels": 8,
                   "embedding_dim": 8},
    "resnet18": {"base_width": 4, "embedding_dim": 8},
    "rescnn": {"base_channels": 4, "embedding_dim": 8, "depths": [1, 1, 1, 1]},   # the paper's 3, 4, 6, 3: same layers
}
FEAT_DIM = 16
TRAIN = ["data.speakers_per_batch=4", "data.min_frames=40", "data.max_frames=48", "valid.num_utts=8",
         "valid.frames=40", "schedule.steps_per_epoch=3", "schedule.num_epochs=1", "log_every=3", "optimizer.lr=0.01"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_features(str(tmp_path_factory.mktemp("net_data") / "data"), num_speakers=6, utts_per_speaker=5,
                         dim=FEAT_DIM)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """name -> experiment dir trained a few steps (once per module; the conf file is recorded)."""
    root = tmp_path_factory.mktemp("net_exps")
    conf = root / "fbank.conf"
    conf.write_text("--num-mel-bins=16\n")
    cache = {}

    def get(name):
        if name not in cache:
            exp = str(root / name)
            config = build_config(None, TRAIN + ["loss.name=amsoftmax", "features.type=fbank", f"features.conf={conf}"],
                                  base={"nnet": {"name": name, "params": SMALL[name]}})
            result = train(data_dir, exp, config, stream=open(os.devnull, "w"))
            assert len(result.epochs) == 1
            cache[name] = exp
        return cache[name]
    return get


def _raw_feats(lengths, seed=3):
    rng = np.random.default_rng(seed)
    return {f"u{i}": rng.normal(size=(n, FEAT_DIM)).astype(np.float32) for i, n in enumerate(lengths)}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_train_save_load_extract_equals_in_memory_forward(name, trained):
    """The vectors tfspk.extract writes from the saved dir == the network run in memory on the same frames."""
    from tfspk.extract import load_extractor
    from tfspk.nnet import load_trained
    exp = trained(name)
    saved = yaml.safe_load(open(os.path.join(exp, "config.yaml")))
    assert saved["nnet"]["name"] == name and saved["features"]["type"] == "fbank"
    # the small parameters (e.g. rescnn's depths, a list) are recorded and rebuilt by load_trained below
    assert {key: saved["nnet"]["params"][key] for key in SMALL[name]} == SMALL[name]
    from tfspk.features import read_front_end
    front_end = read_front_end(exp)   # the conf's options, recorded resolved
    assert front_end.feature_type == "fbank" and front_end.options.mel.num_mel_bins == 16 and front_end.dim == 16
    model, _, network = load_trained(exp)
    extractor = load_extractor(exp, chunk_size=-1, min_chunk_size=max(25, network.min_frames()))
    feats = _raw_feats([60, 31, 90])
    got = dict(extractor.extract(iter(feats.items())))
    for utt, x in feats.items():
        want = model(x[None], training=False)["embedding_a"].numpy()[0]
        np.testing.assert_allclose(got[utt], want, rtol=1e-4, atol=1e-5)
    # Chunked: sum_k n_k e_k / sum_k n_k over chunks of 40 frames; the last one (10 frames) padded to 25 by
    # floor(15 / 2) = 7 copies of its first frame before it and 8 of its last after it.
    chunked = load_extractor(exp, chunk_size=40, min_chunk_size=max(25, network.min_frames()))
    x = feats["u2"]
    e1 = model(x[None, :40], training=False)["embedding_a"].numpy()[0]
    e2 = model(x[None, 40:80], training=False)["embedding_a"].numpy()[0]
    last = np.concatenate([np.repeat(x[80:81], 7, 0), x[80:90], np.repeat(x[89:90], 8, 0)])
    e3 = model(last[None], training=False)["embedding_a"].numpy()[0]
    np.testing.assert_allclose(chunked.extract_one("u2", x), (40 * e1 + 40 * e2 + 10 * e3) / 90,
                               rtol=1e-4, atol=1e-5)


def test_short_utterance_error_names_it_or_is_padded(trained):
    from tfspk.extract import load_extractor
    exp = trained("tdnn")  # min_frames 15: the one network with a real minimum
    feats = _raw_feats([40, 9])
    strict = load_extractor(exp, pad_input=False)
    with pytest.raises(ToolError, match=r"utterance 'u1' has 9 \(voiced\) frames; the 'tdnn' network needs at "
                                        r"least 15 \(--pad-input=true"):
        list(strict.extract(iter(feats.items())))
    padded = load_extractor(exp, pad_input=True, min_chunk_size=25)
    x = feats["u1"]
    from tfspk.nnet import load_trained
    model = load_trained(exp)[0]
    # Kaldi --pad-input: first frame repeated floor(16/2) = 8 times before, last frame 8 times after.
    want = model(np.concatenate([np.repeat(x[:1], 8, 0), x, np.repeat(x[-1:], 8, 0)])[None],
                 training=False)["embedding_a"].numpy()[0]
    np.testing.assert_allclose(padded.extract_one("u1", x), want, rtol=1e-4, atol=1e-5)


def test_extraction_refuses_a_feature_dim_naming_both(trained):
    from tfspk.extract import load_extractor
    exp = trained("ecapa_tdnn")
    extractor = load_extractor(exp)
    bad = np.zeros((50, 24), np.float32)
    with pytest.raises(ToolError, match=r"utterance 'x' has features of dimension 24, but the network of "
                                        r".*config.yaml was trained on dimension 16"):
        extractor.extract_one("x", bad)


def test_exp_dir_with_the_config_of_another_network_is_a_clear_error(trained, tmp_path):
    """Weights of a resnet18 under a config naming ecapa_tdnn: ToolError naming the weights and the config."""
    import shutil
    from tfspk.extract import load_extractor
    exp = tmp_path / "mixed"
    shutil.copytree(trained("resnet18"), exp)
    config = yaml.safe_load(open(exp / "config.yaml"))
    config["nnet"] = {"name": "ecapa_tdnn", "params": SMALL["ecapa_tdnn"]}
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ToolError, match=r"cannot load .*model.weights.h5 into the network of .*config.yaml"):
        load_extractor(str(exp))


def test_unknown_network_and_impossible_feature_dim_are_clear_errors(data_dir, tmp_path):
    with pytest.raises(ToolError, match=r"unknown network 'ecapa_tdn'; valid networks: .*ecapa_tdnn.*resnet34"):
        config = build_config(None, TRAIN, base={"nnet": {"name": "ecapa_tdn"}})
        train(data_dir, str(tmp_path / "x"), config)
    odd = make_features(str(tmp_path / "odd"), num_speakers=6, utts_per_speaker=5, dim=12)  # not a multiple of 8
    config = build_config(None, TRAIN, base={"nnet": {"name": "resnet34", "params": SMALL["resnet18"]}})
    with pytest.raises(ToolError, match=r"network 'resnet34': feature dimension 12 is not a multiple of 8"):
        train(odd, str(tmp_path / "y"), config, stream=open(os.devnull, "w"))


def test_unreadable_features_conf_leaves_no_config(data_dir, tmp_path):
    config = build_config(None, TRAIN + [f"features.conf={tmp_path}/missing.conf"],
                          base={"nnet": {"name": "tdnn", "params": SMALL["tdnn"]}})
    with pytest.raises(ToolError, match=r"config key 'features.conf': no such file .*missing.conf"):
        train(data_dir, str(tmp_path / "e"), config, stream=open(os.devnull, "w"))
    assert not os.path.exists(tmp_path / "e" / "config.yaml")


# ------------------------------------------------------------------------------------ nnet-info
def _keras_reference(name, feat_dim):
    """Independent statement: the totals Keras itself reports, and the layer list of model.summary's source."""
    import keras
    from tfspk.nnet import get_network
    keras.utils.set_random_seed(0)
    model = get_network(name, SMALL[name]).build(feat_dim)
    return model.count_params(), [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


@pytest.mark.parametrize("name", ["tdnn", "ecapa_tdnn"])
def test_nnet_info_of_an_exp_dir_and_a_config(name, trained, tmp_path, capsys, tool):
    from tfspk.nnet.info import info_from_path
    exp = trained(name)
    info = info_from_path(exp)
    total, layer_names = _keras_reference(name, FEAT_DIM)
    assert info.total_params == total == sum(row.num_params for row in info.layers)
    assert [row.name for row in info.layers] == layer_names
    assert info.feat_dim == FEAT_DIM and info.network.network_name == name
    text = info.format()
    assert f"num-parameters: {total}" in text and "embedding-dim: 8" in text
    assert f"min-frames: {15 if name == 'tdnn' else 1}" in text
    # A training config (no feat_dim): needs --feat-dim; the tool prints the same text.
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"nnet": {"name": name, "params": SMALL[name]}}))
    with pytest.raises(ToolError, match=r"has no 'feat_dim' key .*give the feature dimension \(--feat-dim\)"):
        info_from_path(str(conf))
    proc = tool(f"tfspk-nnet-info --feat-dim={FEAT_DIM} {conf}")   # in this process (TensorFlow loaded once)
    assert f"num-parameters: {total}" in proc.stdout and f"network: {name}" in proc.stdout


def test_nnet_info_bad_input(tmp_path, tool):
    conf = tmp_path / "c.yaml"
    conf.write_text("nnet: {name: resnet99}\n")
    proc = run(["tfspk-nnet-info", "--feat-dim=80", str(conf)], check=False)
    assert proc.returncode != 0 and "unknown network 'resnet99'; valid networks:" in proc.stderr
    assert "Traceback" not in proc.stderr
    conf.write_text("nnet: {name: resnet34}\n")
    proc = tool(f"tfspk-nnet-info --feat-dim=30 {conf}", check=False)   # the console script: the case above
    assert proc.returncode != 0 and "feature dimension 30 is not a multiple of 8" in proc.stderr
    proc = tool(f"tfspk-nnet-info {tmp_path}", check=False)
    assert proc.returncode != 0 and "without config.yaml" in proc.stderr


# ------------------------------------------------------------------------------ demo: seeds
def test_run_seeds_prints_each_seed_and_mean_and_sample_std(repo, tmp_path):
    """local/run_seeds.sh with existing results (--reuse): the statistics == numpy's mean and std(ddof=1)."""
    recipe = repo / "egs" / "demo" / "v2"
    eers = {1: (15.12, 18.40), 2: (14.02, 17.95), 7: (16.70, 19.31)}
    for seed, (plda, cosine) in eers.items():
        scores = tmp_path / "exp" / f"ecapa_tdnn_nnet_aamsoftmax_seed{seed}" / "scores"
        scores.mkdir(parents=True)
        (scores / "results.txt").write_text(
            "system     #target  #nontarget         EER(%)   minDCF(0.01)  minDCF(0.001)       minDCF08\n"
            f"plda 10 20 {plda} 0.9 0.9 0.7\ncosine 10 20 {cosine} 0.9 0.9 0.7\n")
    proc = run(["local/run_seeds.sh", "--net", "ecapa_tdnn", "--aug", "none", "--seeds", "1 2 7",
                "--exp", str(tmp_path / "exp")], cwd=recipe)
    plda, cosine = np.array(list(eers.values())).T
    for backend, values in (("plda", plda), ("cosine", cosine)):
        assert re.search(rf"^ecapa_tdnn_nnet_aamsoftmax eval {backend} +EER {values.mean():.2f} \+- "
                         rf"{values.std(ddof=1):.2f} % over 3 seeds \(per seed: "
                         + " ".join(f"{v:.2f}" for v in values) + r"\)$", proc.stdout, re.M), proc.stdout
    (tmp_path / "exp" / "ecapa_tdnn_nnet_aamsoftmax_seed1").rename(tmp_path / "exp" / "mine_seed1")
    named = run(["local/run_seeds.sh", "--name", "mine", "--seeds", "1", "--exp", str(tmp_path / "exp")], cwd=recipe)
    assert re.search(r"^mine eval plda +EER 15.12 \+- 0.00 % over 1 seeds", named.stdout, re.M), named.stdout
    bad = run(["local/run_seeds.sh", "--seeds", "1 x"], cwd=recipe, check=False)
    assert bad.returncode == 1 and "--seeds must be non-negative integers, got 'x'" in bad.stderr


@pytest.mark.parametrize("script", ["run_seeds.sh", "run_finetune_seeds.sh"])
def test_both_seed_scripts_check_the_seed_list_alike(repo, script):
    """One check (check_seeds of utils/recipe_stages.sh) before anything runs, the same message in both."""
    bad = run([f"local/{script}", "--seeds", "1 -2 3"], cwd=repo / "egs" / "demo" / "v2", check=False)
    assert bad.returncode == 1 and bad.stderr == f"local/{script}: --seeds must be non-negative integers, got '-2'\n"


def _seeds_recipe(repo, tmp_path):
    """A recipe dir with local/run_seeds.sh and a run.sh that records its options in calls.txt."""
    demo = repo / "egs" / "demo" / "v2"
    recipe = tmp_path / "recipe"
    (recipe / "local").mkdir(parents=True)
    for name in ("run_seeds.sh", "mean_std.awk"):
        shutil.copy(demo / "local" / name, recipe / "local" / name)
    (recipe / "utils").symlink_to(repo / "utils")
    (recipe / "cmd.sh").write_text("")
    (recipe / "path.sh").write_text("")
    (recipe / "run.sh").write_text(   # records its options and writes the results run_seeds.sh summarises
        '#!/usr/bin/env bash\necho "$*" >> calls.txt\n'
        'while [ $# -gt 0 ]; do [ "$1" = --nnet-dir ] && dir=$2; shift; done\n'
        'for d in scores scores_dev; do mkdir -p "$dir/$d"\n'
        '  printf "system a b EER\\nplda 10 20 15.0 0.9 0.9 0.7\\n" > "$dir/$d/results.txt"; done\n')
    (recipe / "run.sh").chmod(0o755)
    return recipe


def test_run_seeds_init_from_gives_each_seed_its_own_source(repo, tmp_path):
    """--init-from 'exp/base_seed{seed}' (large-margin fine-tuning of each seed's system): every seed's run.sh
    gets --init-from with {seed} replaced by that seed; without the option run.sh gets no --init-from."""
    recipe = _seeds_recipe(repo, tmp_path)
    run(["local/run_seeds.sh", "--seeds", "1 7", "--name", "lmft", "--init-from", "exp/base_seed{seed}"], cwd=recipe)
    calls = (recipe / "calls.txt").read_text().splitlines()
    assert [re.search(r"--init-from (\S+) .*--nnet-dir (\S+)", c).groups() for c in calls] == \
        [("exp/base_seed1", "exp/lmft_seed1"), ("exp/base_seed7", "exp/lmft_seed7")], calls
    run(["local/run_seeds.sh", "--seeds", "2", "--name", "plain"], cwd=recipe)
    assert "--init-from" not in (recipe / "calls.txt").read_text().splitlines()[-1]


def test_run_seeds_passes_set_to_every_seeds_run_sh(repo, tmp_path):
    """--set augment.spec_augment=true (SpecAugment on the feats crops) reaches every seed's run.sh, which passes
    --set on to steps/train_xvector.sh and tfspk-train (tests/test_steps_train_xvector.py)."""
    recipe = _seeds_recipe(repo, tmp_path)
    run(["local/run_seeds.sh", "--seeds", "1 2", "--set", "augment.spec_augment=true"], cwd=recipe)
    calls = (recipe / "calls.txt").read_text().splitlines()
    assert len(calls) == 2 and all(re.search(r"--set seed=\d .*--set augment.spec_augment=true", c) for c in calls), calls


def test_run_seeds_passes_speed_perturb_to_run_sh(repo, tmp_path):
    """--speed-perturb "0.9 1.1" reaches every seed's run.sh (which trains on data/<train>_sp..._no_sil);
    without it run.sh gets an empty --speed-perturb (no perturbed copies)."""
    recipe = _seeds_recipe(repo, tmp_path)
    run(["local/run_seeds.sh", "--seeds", "1 2", "--name", "sp", "--speed-perturb", "0.9 1.1"], cwd=recipe)
    run(["local/run_seeds.sh", "--seeds", "3", "--name", "plain"], cwd=recipe)
    calls = (recipe / "calls.txt").read_text().splitlines()
    assert [c.endswith("--speed-perturb 0.9 1.1") for c in calls] == [True, True, False], calls
    assert calls[2].endswith("--speed-perturb "), calls[2]


def test_run_seeds_remakes_stage_2_when_the_split_has_no_perturbed_training_set(repo, tmp_path):
    """A dev split made without --speed-perturb (data/dev/.done matches) has no combined training set of the
    copies: --speed-perturb runs stage 2 again (the old script skipped it, and stage 3 stopped); once
    run.sh's .done of that set names these factors and this split, stage 2 is not run again."""
    recipe = _seeds_recipe(repo, tmp_path)
    (recipe / "data" / "dev").mkdir(parents=True)
    (recipe / "data" / "dev" / ".done").write_text("speakers=10 seed=777\n")
    args = ["local/run_seeds.sh", "--seeds", "1", "--dev-speakers", "10", "--speed-perturb", "0.9 1.1"]
    run(args + ["--name", "a"], cwd=recipe)
    stage2 = [c for c in (recipe / "calls.txt").read_text().splitlines() if "--stage 2 --stop-stage 2" in c]
    assert len(stage2) == 1 and "--speed-perturb 0.9 1.1 " in stage2[0], stage2
    done = recipe / "data" / "train_nodev_sp_fbank_no_sil" / ".done"
    done.parent.mkdir()
    done.write_text("factors=0.9 1.1 dev_speakers=10 seed=777\n")
    run(args + ["--name", "b"], cwd=recipe)
    run(["local/run_seeds.sh", "--seeds", "1", "--dev-speakers", "10", "--name", "c"], cwd=recipe)
    calls = (recipe / "calls.txt").read_text().splitlines()
    assert sum("--stage 2 --stop-stage 2" in c for c in calls) == 1, calls


def test_recipes_have_one_config_per_system_with_its_features(repo):
    """Each system YAML builds its network for the feature dim of its features.type (no training)."""
    from tfspk.nnet import network_from_config
    dims = {"mfcc": 30, "fbank": 80, "spectrogram": 161}
    for recipe, systems in (("voxceleb", ["tdnn", "ecapa_tdnn_c1024", "resnet34", "rescnn"]),
                            ("demo", ["tdnn", "tdnn_fbank", "ecapa_tdnn", "resnet34"])):
        for system in systems:
            path = repo / "egs" / recipe / "v2" / "conf" / f"{system}.yaml"
            config = build_config(str(path), [])
            assert (path.parent.parent / config.features.conf).is_file(), path
            network = network_from_config(config.nnet)
            network.check_feat_dim(dims[config.features.type])
    vox = build_config(str(repo / "egs/voxceleb/v2/conf/ecapa_tdnn_c1024.yaml"), [])
    assert vox.nnet["params"]["channels"] == 1024 and vox.loss.name == "adaptive_rectangle"
    assert vox.optimizer.name == "adam" and vox.optimizer.lr == 1e-3 and vox.schedule.num_epochs == 80
    res = build_config(str(repo / "egs/voxceleb/v2/conf/resnet34.yaml"), [])
    assert res.loss.name == "arcsoftmax" and res.loss.params == {"m2": 0.2, "scale": 32.0, "anneal": False}
    assert res.nnet["params"]["embedding_dim"] == 256 and res.features.type == "fbank"
    assert build_config(str(repo / "egs/voxceleb/v2/conf/rescnn.yaml"), []).features.type == "spectrogram"


def test_run_sh_unknown_system_or_net_lists_the_valid_ones(repo, tmp_path):
    proc = run(["./run.sh", "--system", "ecapa", "--stage", "4", "--data", str(tmp_path / "d"),
                "--exp", str(tmp_path / "e")], cwd=repo / "egs" / "voxceleb" / "v2", check=False)
    assert proc.returncode == 1 and "no conf/ecapa.yaml; --system is one of:" in proc.stderr
    assert "ecapa_tdnn_c1024" in proc.stderr and "rescnn" in proc.stderr
    proc = run(["./run.sh", "--net", "ecapa", "--stage", "4", "--data", str(tmp_path / "d"),
                "--exp", str(tmp_path / "e")], cwd=repo / "egs" / "demo" / "v2", check=False)
    assert proc.returncode == 1 and "--net is one of: tdnn tdnn_fbank ecapa_tdnn resnet34" in proc.stderr
