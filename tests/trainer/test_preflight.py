"""The preflight: a recipe that would fail at step 1 fails before the model loads and before a checkpoint."""

from pathlib import Path

import pytest

from rewardstack.cli import main
from tests.helpers import free_port
from trainer.preflight import PreflightError, check_static, preflight
from trainer.recipe import load_recipe

TINY = Path(__file__).resolve().parents[2] / "trainer" / "recipes" / "tiny-cpu.yaml"


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model is the failure these tests guard against: make it one."""
    import trainer.evaluate
    import trainer.model.loading

    def refuse(*_a, **_k):
        raise AssertionError("the model was loaded before the recipe was checked")

    monkeypatch.setattr(trainer.model.loading, "load_model", refuse)
    monkeypatch.setattr(trainer.evaluate, "generate", refuse)


def test_a_wrong_params_block_fails_before_model_load_and_leaves_no_checkpoint(tmp_path, no_model, capsys):
    out = tmp_path / "run"
    code = main(["train", str(TINY), "--set", "rewards.0.params.mode=bogus", "--set", f"output.dir={out}",
                 "--set", "resume=auto"])
    assert code == 2
    err = capsys.readouterr().err
    assert "rewards[0] (format)" in err and "refused params" in err and "params.mode" in err
    assert not out.exists() or not any(out.glob("checkpoint-*"))


def test_eval_checks_params_before_generating(tmp_path, no_model):
    from trainer.evaluate import run_eval

    recipe = load_recipe(TINY, ["rewards.1.params.mode=nope"])
    with pytest.raises(PreflightError, match=r"rewards\[1\] \(answer\).*refused params"):
        run_eval(recipe, adapter=None, limit=2, out_dir=tmp_path)


def test_a_reference_column_the_data_lacks_is_named_with_the_columns():
    recipe = load_recipe(TINY, ["rewards.2.reference=soluton"])
    with pytest.raises(PreflightError, match=r"rewards\[2\] \(math\)\.reference: the data has no column 'soluton'; columns: .*solution"):
        preflight(recipe)


@pytest.mark.parametrize(("override", "message"), [
    ("rewards.0.url=inproc://regex", "no service 'regex'; did you mean inproc://regex_format?"),
    ("rewards.0.token_env=REWARDSTACK_TEST_UNSET_TOKEN", "REWARDSTACK_TEST_UNSET_TOKEN is not set"),
    ("data.path=/nonexistent/x.jsonl", "data.path: /nonexistent/x.jsonl does not exist"),
])
def test_user_mistakes_in_a_recipe_are_one_message_with_exit_2(tmp_path, override, message, capsys):
    assert main(["train", str(TINY), "--set", override, "--set", f"output.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "pip install" not in err


def test_the_shipped_recipe_passes_and_its_dataset_is_handed_on():
    recipe = load_recipe(TINY)
    check_static(recipe)
    dataset = preflight(recipe)
    assert dataset.num_rows == recipe.data.limit


def test_a_dataset_that_cannot_be_loaded_names_the_setting_before_model_load(tmp_path, no_model, capsys):
    empty = tmp_path / "path-vqa"
    empty.mkdir()  # exists, so the static check passes; holds no data files
    code = main(["train", str(TINY), "--set", "data.source=path_vqa", "--set", f"data.path={empty}",
                 "--set", f"output.dir={tmp_path / 'run'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"data.path {empty} (path_vqa) cannot be loaded" in err and "Getting the data" in err


def test_a_service_that_refuses_connections_stops_train_at_unreachable_s_whatever_on_error(
        tmp_path, no_model, capsys):
    # One check before the model loads, with training's client: on_error skip rides out an
    # outage during a run, not a run that starts against a dead service.
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["train", str(TINY), "--set", f"rewards.0.url={url}", "--set", "rewards.0.on_error=skip",
                 "--set", "rewards.0.timeout_s=600", "--set", "rewards.0.unreachable_s=0.2",
                 "--set", f"output.dir={tmp_path}"])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"rewards[0] (format) at {url}: no answer: unreachable for 0.2s" in err
    assert err.count(url) == 1 and "start the service or fix the url" in err


def test_eval_stops_on_a_dead_service_before_generating(tmp_path, no_model):
    from trainer.evaluate import run_eval

    url = f"http://127.0.0.1:{free_port()}"
    recipe = load_recipe(TINY, [f"rewards.1.url={url}", "rewards.1.timeout_s=3", "rewards.1.unreachable_s=0.2"])
    with pytest.raises(PreflightError, match=rf"rewards\[1\] \(answer\) at {url}: no answer: unreachable"):
        run_eval(recipe, adapter=None, limit=2, out_dir=tmp_path)
