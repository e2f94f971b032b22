"""The shipped recipes' data sections and accelerate configs, beyond what Recipe validation checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

from trainer.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[3] / "trainer" / "recipes"


@pytest.mark.parametrize(
    ("name", "stage", "processes", "optimizer_offload"),
    [("deepspeed_zero3", 3, 2, "none"), ("deepspeed_zero2_offload", 2, 1, "cpu")],
)
def test_accelerate_configs_load(name: str, stage: int, processes: int,
                                 optimizer_offload: str) -> None:
    config = load_config_from_file(str(RECIPES / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type == DistributedType.DEEPSPEED
    assert config.num_processes == processes
    assert config.deepspeed_config["zero_stage"] == stage
    assert config.deepspeed_config["offload_optimizer_device"] == optimizer_offload


def test_recipe_comments_name_existing_accelerate_configs() -> None:
    for recipe in RECIPES.glob("*.yaml"):
        for word in recipe.read_text(encoding="utf-8").split():
            if word.startswith("trainer/recipes/"):
                assert (RECIPES.parents[1] / word).exists(), f"{recipe.name} names {word}"


def test_each_source_has_a_recipe() -> None:
    sources = {load_recipe(p).data.source for p in RECIPES.glob("*.yaml")}
    assert sources == {"path_vqa", "mathvista", "vivqa_x", "jsonl", "synthetic"}
