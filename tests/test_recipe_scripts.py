"""The recipes as a Kaldi reader expects them: data-dir scripts of utils/, conf comments true to the code."""
import re

import pytest
import yaml

from conftest import REPO
from tfspk.nnet import xvector

RECIPES = ["egs/demo/v2", "egs/voxceleb/v2"]
ORDER_WORDS = {xvector.BN_RELU: "affine -> BN -> ReLU", xvector.RELU_BN: "affine -> ReLU -> BN"}


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_uses_kaldis_data_dir_scripts(recipe):
    text = (REPO / recipe / "run.sh").read_text()
    assert not re.search(r"tfspk-(fix|combine|copy|subset|split|validate)-data", text)  # the utils/ wrappers instead
    assert "utils/fix_data_dir.sh \"$data/" in text


@pytest.mark.parametrize("recipe", RECIPES)
def test_train_yaml_describes_the_layer_order_the_code_uses(recipe):
    path = REPO / recipe / "conf/train.yaml"
    arch = yaml.safe_load(path.read_text())["nnet"]["name"]
    comments = " ".join(line.split("#", 1)[1] for line in path.read_text().splitlines() if "#" in line)
    comments = re.sub(r"\s+", " ", comments)
    assert ORDER_WORDS[xvector.ARCHITECTURES[arch].layer_order] in comments
    assert "BN after ReLU" not in comments
