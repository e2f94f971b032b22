"""Recipes: every shipped one validates and TRL accepts its grpo section; bad ones fail by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from trl import GRPOConfig

from trainer.recipe import Recipe, RecipeError, load_recipe, parse_recipe

RECIPES = sorted((Path(__file__).resolve().parents[3] / "trainer" / "recipes").glob("*.yaml"))


def _minimal(**changes) -> dict:
    raw = {
        "model": {"id": "tiny://qwen2.5-vl"},
        "data": {"source": "synthetic", "limit": 8},
        "rewards": [{"name": "format", "url": "http://127.0.0.1:8001"}],
        "grpo": {"per_device_train_batch_size": 4, "num_generations": 4},
        "output": {"dir": "out"},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            raw[section][field] = value
        else:
            raw[section] = value
    return raw


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_recipes_are_shipped():
    assert any(p.name == "tiny-cpu.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipe_validates_and_grpo_config_accepts_it(path, tmp_path):
    recipe = load_recipe(path)
    kwargs = recipe.grpo_kwargs() | {"output_dir": str(tmp_path)}
    # use_cpu lets bf16 recipes for GPUs construct here; everything else is the recipe's own.
    config = GRPOConfig(**kwargs, use_cpu=True)
    assert config.num_generations == recipe.grpo.get("num_generations", 8)
    assert config.reward_weights == [r.weight for r in recipe.rewards]
    assert config.use_vllm == (recipe.vllm.mode != "none")


def test_unknown_grpo_key_is_rejected_by_name(tmp_path):
    raw = _minimal(grpo={"learning_rte": 1e-5, "num_generations": 4, "per_device_train_batch_size": 4})
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, raw))
    msg = str(err.value)
    assert "grpo.learning_rte is not a GRPOConfig field" in msg
    assert "learning_rate" in msg  # the suggestion
    assert str(tmp_path / "recipe.yaml") in msg


@pytest.mark.parametrize(
    ("section", "key"), [("model", "dtypo"), ("lora", "rank"), ("vllm", "gpu_mem"), ("output", "folder")]
)
def test_unknown_key_in_any_section_is_rejected_by_name(tmp_path, section, key):
    raw = _minimal()
    raw.setdefault(section, {})
    if section == "output":
        raw[section]["dir"] = "out"
    raw[section][key] = 1
    with pytest.raises(RecipeError, match=rf"{section}\.{key}: unknown key"):
        load_recipe(_write(tmp_path, raw))


def test_unknown_top_level_section_is_rejected():
    with pytest.raises(RecipeError, match=r"trainer: unknown key; this section takes description, model"):
        parse_recipe(_minimal(trainer={"x": 1}))


def test_grpo_keys_owned_by_other_sections_point_there():
    raw = _minimal(grpo={"output_dir": "x", "num_generations": 4, "per_device_train_batch_size": 4})
    with pytest.raises(RecipeError, match=r"grpo\.output_dir is set by the recipe's output\.dir"):
        parse_recipe(raw)
    raw = _minimal(grpo={"use_vllm": True, "num_generations": 4, "per_device_train_batch_size": 4})
    with pytest.raises(RecipeError, match=r"vllm\.mode"):
        parse_recipe(raw)


def test_batch_not_a_multiple_of_num_generations_names_the_fields():
    raw = _minimal(grpo={"per_device_train_batch_size": 3, "gradient_accumulation_steps": 2,
                         "num_generations": 4})
    with pytest.raises(RecipeError) as err:
        parse_recipe(raw)
    msg = str(err.value)
    assert "per_device_train_batch_size (3)" in msg and "gradient_accumulation_steps (2)" in msg
    assert "num_generations (4)" in msg
    # 2 × 2 = 4 is accepted: the check is on the product, as TRL computes it
    ok = _minimal(grpo={"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2,
                        "num_generations": 4})
    assert parse_recipe(ok).grpo["gradient_accumulation_steps"] == 2


def test_num_generations_below_two_is_refused():
    raw = _minimal(grpo={"per_device_train_batch_size": 1, "num_generations": 1})
    with pytest.raises(RecipeError, match="num_generations must be an integer >= 2"):
        parse_recipe(raw)


def test_overrides_are_yaml_values_and_reach_lists(tmp_path):
    path = _write(tmp_path, _minimal())
    recipe = load_recipe(path, ["grpo.learning_rate=1e-4", "rewards.0.weight=2", "lora=null",
                                "model.load_in_4bit=true", "grpo.max_steps=3"])
    assert recipe.grpo["learning_rate"] == pytest.approx(1e-4)
    assert recipe.grpo["max_steps"] == 3
    assert recipe.rewards[0].weight == 2.0
    assert recipe.lora is None
    assert recipe.model.load_in_4bit is True


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("grpo.learning_rate", "must look like section.key=value"),
        ("rewards.3.weight=1", "has a list of 1 here"),
        ("model.id.x=1", "model.id in .* is a value, not a section"),
    ],
)
def test_bad_overrides_say_what_is_wrong(tmp_path, override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(_write(tmp_path, _minimal()), [override])


def test_override_with_an_unknown_grpo_key_fails_like_the_file(tmp_path):
    with pytest.raises(RecipeError, match=r"grpo\.num_generation is not a GRPOConfig field"):
        load_recipe(_write(tmp_path, _minimal()), ["grpo.num_generation=4"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(RecipeError, match="is not valid YAML"):
        load_recipe(bad)
    bad.write_text("- a list\n")
    with pytest.raises(RecipeError, match="must be a mapping of sections"):
        load_recipe(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, False), ("auto", "auto"), ("out/checkpoint-20", Path("out/checkpoint-20"))],
)
def test_resume_spellings(value, expected):
    assert parse_recipe(_minimal(resume=value)).resume == expected


def test_resume_true_is_ambiguous():
    with pytest.raises(RecipeError, match="resume: true is ambiguous"):
        parse_recipe(_minimal(resume=True))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "f", "url": "http://a", "urls": ["http://b"]}, "exactly one of 'url' or 'urls'"),
        ({"name": "f"}, "exactly one of 'url' or 'urls'"),
        ({"name": "f", "url": "ftp://a"}, "must start with one of"),
        ({"name": "my-reward", "url": "http://a"}, "must be a Python identifier"),
        ({"name": "f", "url": "http://a", "on_error": "retry"}, "on_error"),
        ({"name": "f", "url": "http://a", "max_failed_fraction": 1.5}, "max_failed_fraction"),
    ],
)
def test_bad_reward_entries(entry, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(_minimal(rewards=[entry]))


def test_reward_names_must_be_unique():
    rewards = [{"name": "f", "url": "http://a"}, {"name": "f", "url": "http://b"}]
    with pytest.raises(RecipeError, match=r"repeated: \['f'\]"):
        parse_recipe(_minimal(rewards=rewards))


def test_reward_weights_and_vllm_flow_into_grpo_kwargs():
    rewards = [{"name": "a", "url": "http://a", "weight": 2.0},
               {"name": "b", "urls": ["http://b1", "http://b2"], "weight": 0.5}]
    recipe = parse_recipe(_minimal(rewards=rewards, vllm={"mode": "server", "server_url": "http://v:8000"}))
    kw = recipe.grpo_kwargs()
    assert kw["reward_weights"] == [2.0, 0.5]
    assert kw["use_vllm"] is True and kw["vllm_mode"] == "server"
    assert kw["vllm_server_base_url"] == "http://v:8000"
    assert recipe.rewards[1].endpoints == ["http://b1", "http://b2"]


def test_vllm_server_mode_needs_a_url():
    with pytest.raises(RecipeError, match=r"vllm\.server_url is not set"):
        parse_recipe(_minimal(vllm={"mode": "server"}))


def test_lora_disabled_means_full_fine_tuning():
    assert parse_recipe(_minimal(lora={"enabled": False})).lora is None
    assert parse_recipe(_minimal(lora=None)).lora_enabled is False
    assert parse_recipe(_minimal()).lora_enabled is True


def test_resolved_yaml_round_trips():
    recipe = parse_recipe(_minimal(lora={"r": 4, "target_modules": ["q_proj"]}))
    again = Recipe.model_validate(yaml.safe_load(recipe.to_yaml()))
    assert again == recipe


def test_exponent_without_a_dot_is_a_float_in_files_and_overrides(tmp_path):
    # YAML 1.1 (PyYAML) reads `1e-5` as a string; TRL would then get text for a learning rate.
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(_minimal()).replace("grpo:\n", "grpo:\n  learning_rate: 1e-5\n"))
    assert load_recipe(path).grpo["learning_rate"] == pytest.approx(1e-5)
    assert load_recipe(path, ["grpo.weight_decay=1E-2"]).grpo["weight_decay"] == pytest.approx(0.01)


def test_no_and_off_stay_strings_as_trl_expects(tmp_path):
    # YAML 1.1 (PyYAML) turns `no` into False; TRL's save_strategy needs the string "no".
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(_minimal()).replace("grpo:\n", "grpo:\n  save_strategy: no\n"))
    recipe = load_recipe(path, ["grpo.report_to=none", "model.load_in_4bit=false"])
    assert recipe.grpo["save_strategy"] == "no"
    assert recipe.model.load_in_4bit is False
    config = GRPOConfig(**recipe.grpo_kwargs() | {"output_dir": str(tmp_path)}, use_cpu=True)
    assert config.save_strategy == "no"


@pytest.mark.parametrize(("override", "shown"), [
    ("model.dtyp=auto", "model.dtyp: unknown key (did you mean dtype?)"),
    ("data.limt=3", "data.limt: unknown key (did you mean limit"),
    ("rewards.0.weigth=2", "rewards.0.weigth: unknown key (did you mean weight?)"),
    ("vllm.mod=none", "vllm.mod: unknown key (did you mean mode?)"),
    ("outptu.dir=x", "outptu: unknown key (did you mean output?)"),
    ("lora.zzz=1", "lora.zzz: unknown key; this section takes enabled, r, alpha"),
])
def test_misspelled_key_in_any_section_names_the_closest_valid_key(tmp_path, override, shown):
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, _minimal()), [override])
    assert shown in str(err.value)


def test_misspelled_recipe_key_exits_2_naming_it(tmp_path, capsys):
    from rewardstack.cli import main

    assert main(["train", str(_write(tmp_path, _minimal())), "--set", "model.dtyp=auto"]) == 2
    err = capsys.readouterr().err
    assert "model.dtyp" in err and "did you mean dtype" in err and "Traceback" not in err
