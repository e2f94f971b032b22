"""The training recipe: its sections (`schema`), YAML and did-you-mean (`loading`), generated docs (`docs`).

`from trainer.recipe import Recipe, RewardEntry, load_recipe` is the public way in, as before the
package was split.
"""

from trainer.recipe.loading import RecipeError, yaml_load
from trainer.recipe.schema import (
    LoraSection,
    ModelSection,
    OutputSection,
    ProcessorSection,
    Recipe,
    RewardEntry,
    VllmSection,
    grpo_config_fields,
    load_recipe,
    parse_recipe,
)

__all__ = [
    "LoraSection", "ModelSection", "OutputSection", "ProcessorSection", "Recipe", "RecipeError",
    "RewardEntry", "VllmSection", "grpo_config_fields", "load_recipe", "parse_recipe", "yaml_load",
]
