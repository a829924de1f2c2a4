"""One parameter system: Kaldi booleans everywhere, typed sections, the tfspk-train config flags."""
import dataclasses

import argparse
import pytest

from conftest import run_tool_here
from tfspk import cli
from tfspk.errors import ToolError
from tfspk.params import KALDI_FALSE, KALDI_TRUE, build_params, param
from tfspk.train import config as config_mod

SPELLINGS = [(text, True) for text in ("true", "True", "t", "T", "1")] + \
            [(text, False) for text in ("false", "FALSE", "f", "F", "0")]


@dataclasses.dataclass
class _Flags:
    flag: bool = param(False, "a boolean")
    count: int = param(2, "an integer")


@pytest.mark.parametrize("text, value", SPELLINGS)
def test_every_coercer_takes_kaldis_boolean_spellings(text, value):
    assert cli.kaldi_bool(text) is value
    assert build_params(_Flags, {"flag": text}, "x").flag is value
    assert config_mod.build_config(None, [f"jit_compile={text}"]).jit_compile is value
    assert (text.lower() in KALDI_TRUE) is value and (text.lower() in KALDI_FALSE) is (not value)


def test_bad_booleans_name_the_key():
    with pytest.raises(argparse.ArgumentTypeError, match="expected true or false, got 'yes'"):
        cli.kaldi_bool("yes")
    with pytest.raises(ToolError, match=r"x: parameter 'flag' must be true or false, got 'yes'"):
        build_params(_Flags, {"flag": "yes"}, "x")
    with pytest.raises(ToolError, match=r"config key 'sync_batchnorm': expected true or false, got 'maybe'"):
        config_mod.build_config(None, ["sync_batchnorm=maybe"])
    with pytest.raises(ToolError, match=r"config key 'jit_compile': expected true or false, got 2"):
        config_mod.build_config(None, ["jit_compile=2"])


def test_null_means_the_default_and_unknown_keys_list_the_valid_ones():
    assert build_params(_Flags, {"flag": None, "count": 3}, "x") == _Flags(False, 3)
    with pytest.raises(ToolError, match=r"x: unknown parameter 'cnt'; valid parameters: flag \(default False\), "
                                        r"count \(default 2\)"):
        build_params(_Flags, {"cnt": 1}, "x")


def test_parse_assignments():
    assert config_mod.parse_assignments("margin=0.2, scale=norm;anneal=f", "--loss-params") == {
        "margin": 0.2, "scale": "norm", "anneal": "f"}
    with pytest.raises(ToolError, match=r"--loss-params: expected name=value\[,name=value...\], got 'm'"):
        config_mod.parse_assignments("m", "--loss-params")


def test_train_config_flag_and_kaldi_config_file(tmp_path):
    """--train-config is the YAML experiment config; --config is a Kaldi file of options (which may name it)."""
    yaml_path = tmp_path / "exp.yaml"
    yaml_path.write_text("optimizer: {lr: 0.1, learning_rate: 0.2}\n")
    failed = run_tool_here(["tfspk-train", "--train-config", yaml_path, "d", "e"], check=False)
    assert failed.returncode == 1 and "unknown config key 'optimizer.learning_rate'" in failed.stderr, failed.stderr
    options = tmp_path / "train.conf"
    options.write_text(f"# Kaldi options\n--train-config={yaml_path}\n--num-epochs=2\n")
    failed = run_tool_here(["tfspk-train", "--config", options, "d", "e"], check=False)
    assert failed.returncode == 1 and "unknown config key 'optimizer.learning_rate'" in failed.stderr, failed.stderr
    failed = run_tool_here(["tfspk-train", "--config", yaml_path, "d", "e"], check=False)  # YAML is not an options file
    assert failed.returncode == 1 and "expected --name=value" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr


def test_name_registry_resolves_aliases_and_lists_the_valid_names():
    """tfspk.params.NameRegistry: the one lookup behind the network and loss registries."""
    from tfspk.params import NameRegistry
    registry = NameRegistry("widget", "widgets", "widget_name")

    @registry.register("big_one", "large", "XL")
    class Big:
        pass

    @registry.register("small")
    class Small:
        pass

    assert registry.classes == {"big_one": Big, "small": Small}
    assert Big.widget_name == "big_one" and Big.aliases == ("large", "XL") and Small.aliases == ()
    for spelling in ("big_one", "Big-One", "BIGONE", "large", "x_l", "xl"):
        assert registry.resolve(spelling) == "big_one"
    assert registry.listing() == "big_one (alias large, XL), small"
    for bad in ("medium", "", None, 3):
        with pytest.raises(ToolError) as info:
            registry.resolve(bad)
        assert str(info.value) == f"unknown widget {bad!r}; valid widgets: big_one (alias large, XL), small"
    # A name taken by another class is refused before anything changes; re-registering the same name is allowed.
    with pytest.raises(RuntimeError, match="widget name 'large' registered twice"):
        registry.register("other", "large")(type("Other", (), {}))
    assert "other" not in registry.classes and registry.resolve("large") == "big_one"
    assert registry.register("small")(Small) is Small


@dataclasses.dataclass
class _Lists:
    sizes: list = param([2, 3], "a list of integers >= 0", kind="ints", check=">=0")
    any_ints: list = param([], "a list of integers", kind="ints")


def test_ints_kind_is_a_list_of_checked_integers_and_lists_its_default():
    assert build_params(_Lists, {"sizes": (0, 4.0), "any_ints": [-1]}, "x") == _Lists([0, 4], [-1])
    assert _Lists().sizes == [2, 3] and _Lists().sizes is not _Lists().sizes
    for bad in ([1, -1], [1, 0.5], ["a"], [[1]], 3, "1,2"):
        with pytest.raises(ToolError) as info:
            build_params(_Lists, {"sizes": bad}, "x")
        assert str(info.value) == f"x: parameter 'sizes' must be a list of integers, each an integer >= 0, got {bad!r}"
    with pytest.raises(ToolError, match=r"x: parameter 'any_ints' must be a list of integers, got \[True\]"):
        build_params(_Lists, {"any_ints": [True]}, "x")
    with pytest.raises(ToolError, match=r"valid parameters: sizes \(default \[2, 3\]\), any_ints \(default \[\]\)"):
        build_params(_Lists, {"size": [1]}, "x")
