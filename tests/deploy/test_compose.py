"""docker-compose.yml without a Docker engine: the schema, the apps its commands name, the settings
its variables reach, its healthchecks, its profiles, and the compose-* recipes that address it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest

from tests.deploy.support import (
    COMPOSE_SPEC,
    ROOT,
    MissingVariable,
    argv,
    compose_variables,
    env_example,
    env_names,
    healthcheck_url,
    interpolate,
    load_app,
    mount_target_source,
    option,
    raw_compose,
    resolved_compose,
    route_paths,
    settings_class,
    uvicorn_target,
)

COMPOSE = resolved_compose()
SERVICES = COMPOSE["services"]
REWARD_SERVICES = {n: s for n, s in SERVICES.items() if uvicorn_target(s["command"])}
DEFAULT_PROFILE = {n for n, s in SERVICES.items() if not s.get("profiles")}
COMPOSE_RECIPES = sorted((ROOT / "trainer" / "recipes").glob("compose-*.yaml"))
# Variables a service may set that are not its settings: they configure libraries it loads.
RUNTIME_ENV = {"HF_HOME", "HF_ENDPOINT", "OMP_NUM_THREADS"}


@pytest.fixture(autouse=True)
def _judge_key(monkeypatch):
    # llm_judge refuses to build its settings without a key for a remote judge.
    monkeypatch.setenv("LLM_JUDGE_API_KEY", "sk-test")


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(COMPOSE_SPEC.read_text()))


def test_compose_file_is_valid_against_the_compose_spec():
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(raw_compose())]
    assert not errors, errors


def test_the_spec_copy_rejects_a_misspelt_service_key():
    broken = copy.deepcopy(raw_compose())
    broken["services"]["regex_format"]["healthchek"] = broken["services"]["regex_format"].pop("healthcheck")
    assert any("healthchek" in e.message for e in _validator().iter_errors(broken))


def test_default_profile_is_the_five_reward_services_and_the_gateway():
    assert {"regex_format", "math_equiv", "vqa_accuracy", "clip_cider", "llm_judge", "gateway"} == DEFAULT_PROFILE


@pytest.mark.parametrize("doc", ["README.md", "docs/stack.md"])
def test_the_docs_count_and_name_the_default_profiles_containers(doc):
    count = {5: "five", 6: "six", 7: "seven", 8: "eight"}[len(DEFAULT_PROFILE)]
    paragraphs = (ROOT / doc).read_text().split("\n\n")
    told = [p for p in paragraphs if "default profile" in p and f"{count} containers" in p
            and "docker compose up" not in p]
    assert told, f"{doc}: no paragraph says the default profile is {count} containers"
    assert all(f"`{name}`" in told[0] for name in DEFAULT_PROFILE), told[0]


@pytest.mark.parametrize("name", sorted(REWARD_SERVICES))
def test_command_names_an_importable_asgi_app(name):
    target = uvicorn_target(SERVICES[name]["command"])
    assert target.service, f"{name}: {target.module} is not services.<name>.main"
    app = load_app(target.module, target.attr)
    assert callable(app) and "/v1/score" in route_paths(app)


@pytest.mark.parametrize("name", sorted(REWARD_SERVICES))
def test_healthcheck_hits_readyz_on_the_served_port(name):
    service = SERVICES[name]
    target = uvicorn_target(service["command"])
    url = urlsplit(healthcheck_url(service["healthcheck"]["test"]))
    assert url.hostname == "127.0.0.1" and url.port == target.port
    assert url.path == "/readyz"
    assert url.path in route_paths(load_app(target.module, target.attr))
    assert argv(service["healthcheck"]["test"])[:2] == ["CMD", "python"], "images may lack curl"


@pytest.mark.parametrize("name", sorted(REWARD_SERVICES))
def test_every_variable_set_is_a_setting_of_that_service(name, monkeypatch):
    service = SERVICES[name]
    cls = settings_class(uvicorn_target(service["command"]).service)
    env = {k: str(v) for k, v in service.get("environment", {}).items()}
    unknown = set(env) - env_names(cls) - RUNTIME_ENV
    assert not unknown, f"{name} sets {sorted(unknown)}, which {cls.__name__} does not read"
    # And the values parse: the settings build from exactly this environment.
    for var in list(env_names(cls)):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = cls()
    assert settings.log_level == env_example()["LOG_LEVEL"]


def test_the_judge_key_reaches_llm_judge_only_and_is_required():
    raw = raw_compose()["services"]
    holders = {n for n, s in raw.items() if {"OPENROUTER_API_KEY", "LLM_JUDGE_API_KEY"} & set(s.get("environment", {}))}
    assert holders == {"llm_judge"}
    assert raw["llm_judge"]["environment"]["OPENROUTER_API_KEY"].startswith("${OPENROUTER_API_KEY:?")
    without_key = {k: v for k, v in env_example().items() if k != "OPENROUTER_API_KEY"}
    with pytest.raises(MissingVariable, match=r"set OPENROUTER_API_KEY in \.env"):
        interpolate(raw_compose(), without_key)


def test_every_variable_is_documented_in_env_example():
    documented = set(env_example())
    assert compose_variables() - documented == set(), "used in docker-compose.yml, missing from .env.example"
    assert documented - compose_variables() == set(), "in .env.example, unused by docker-compose.yml"


@pytest.mark.parametrize("name", sorted(DEFAULT_PROFILE))
def test_scalable_service_has_no_fixed_name_or_host_port(name):
    service = SERVICES[name]
    assert "container_name" not in service
    assert service["ports"], f"{name} publishes no port for calls from the host"
    for port in service["ports"]:
        assert isinstance(port, dict) and not port.get("published"), f"{name}: {port} fixes a host port by default"
        assert port.get("host_ip") == "127.0.0.1", f"{name}: publish on the loopback only"
    assert service["restart"] in {"unless-stopped", "always", "on-failure"}
    limits = service["deploy"]["resources"]["limits"]
    assert limits.get("cpus") and limits.get("memory")


@pytest.mark.parametrize("name", ["clip_cider", "llm_judge", "math_equiv", "regex_format", "vqa_accuracy"])
def test_a_host_port_can_be_pinned_for_stable_restarts(name):
    (raw_port,) = raw_compose()["services"][name]["ports"]
    var = re.fullmatch(r"\$\{(\w+_HOST_PORT)-\}", raw_port["published"])
    assert var, f"{name}: published is {raw_port['published']!r}, not ${{<SERVICE>_HOST_PORT-}}"
    pinned = resolved_compose({**env_example(), var.group(1): "18101"})["services"][name]["ports"][0]
    assert pinned["published"] == "18101" and pinned["target"] == 8000


def _seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))


def test_clip_cider_start_period_covers_the_weight_download_deadline_and_no_more():
    # The download runs behind a live server with a deadline: the start period covers it and the
    # model build, and a replica without weights turns unhealthy soon after, not ten minutes later.
    for name in ("clip_cider", "clip_cider_gpu"):
        deadline = float(SERVICES[name]["environment"]["CLIP_CIDER_LOAD_TIMEOUT_S"])
        assert deadline + 30 <= _seconds(SERVICES[name]["healthcheck"]["start_period"]) <= 4 * deadline
    assert _seconds(SERVICES["clip_cider"]["healthcheck"]["start_period"]) > _seconds(
        SERVICES["regex_format"]["healthcheck"]["start_period"])


def test_gpu_profile_puts_clip_cider_on_a_gpu():
    cpu, gpu = SERVICES["clip_cider"], SERVICES["clip_cider_gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert uvicorn_target(gpu["command"]) == uvicorn_target(cpu["command"])
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices and all("gpu" in d["capabilities"] for d in devices)
    assert (cpu["environment"]["CLIP_CIDER_CLIP_DEVICE"], gpu["environment"]["CLIP_CIDER_CLIP_DEVICE"]) == ("cpu", "cuda")
    # One Dockerfile; only where torch comes from differs: CPU wheels vs PyPI's CUDA ones.
    assert cpu["build"]["dockerfile"] == gpu["build"]["dockerfile"] == "docker/clip.Dockerfile"
    indexes = (cpu["build"]["args"]["TORCH_INDEX_URL"], gpu["build"]["args"]["TORCH_INDEX_URL"])
    assert indexes == ("https://download.pytorch.org/whl/cpu", "")
    assert cpu["image"] != gpu["image"]
    assert "reservations" not in cpu["deploy"]["resources"]


def _services_used(recipe) -> set[str]:
    hosts = {urlsplit(u).hostname for r in recipe.rewards for u in r.endpoints}
    if recipe.vllm.mode == "server":
        hosts.add(urlsplit(recipe.vllm.server_url).hostname)
    return {_service_of_host(h) for h in hosts}


def _service_of_host(host: str) -> str:
    """A compose service name, or replica N of one: <project>-<service>-<N>."""
    if host in SERVICES:
        return host
    m = re.fullmatch(rf"{re.escape(COMPOSE['name'])}-(\w+)-(\d+)", host)
    assert m and m.group(1) in SERVICES, f"{host} names no service of docker-compose.yml"
    return m.group(1)


def _container_port(name: str) -> int:
    command = SERVICES[name]["command"]
    target = uvicorn_target(command)
    return target.port if target else int(option(argv(command), "--port"))


@pytest.mark.parametrize("path", COMPOSE_RECIPES, ids=lambda p: p.name)
def test_compose_recipe_urls_name_compose_services_and_ports(path: Path):
    from trainer.recipe import load_recipe

    recipe = load_recipe(path, [])
    urls = [u for r in recipe.rewards for u in r.endpoints]
    if recipe.vllm.mode == "server":
        urls.append(recipe.vllm.server_url)
    for url in urls:
        parts = urlsplit(url)
        service = _service_of_host(parts.hostname)
        assert parts.port == _container_port(service), f"{url}: {service} listens on {_container_port(service)}"
    for entry in recipe.rewards:  # replicas of one service are numbered 1..N, as compose names them
        replicas = [int(h.rsplit("-", 1)[1]) for u in entry.endpoints
                    if (h := urlsplit(u).hostname) not in SERVICES]
        assert sorted(replicas) == list(range(1, len(replicas) + 1))
    assert recipe.output.dir.parts[0] == "outputs" and not recipe.output.dir.is_absolute()


def test_some_compose_recipe_balances_over_replicas():
    from trainer.recipe import load_recipe

    assert any(len(r.endpoints) > 1 for p in COMPOSE_RECIPES for r in load_recipe(p, []).rewards)


def test_trainer_waits_for_every_service_a_compose_recipe_uses():
    from trainer.recipe import load_recipe

    trainer = SERVICES["trainer"]
    healthy = {n for n, d in trainer["depends_on"].items() if d["condition"] == "service_healthy"}
    for path in COMPOSE_RECIPES:
        missing = _services_used(load_recipe(path, [])) - healthy
        assert not missing, f"{path.name} uses {sorted(missing)}, which the trainer does not wait for"
    assert all("healthcheck" in SERVICES[n] for n in healthy)


def test_trainer_runs_a_mounted_recipe_and_keeps_outputs_and_caches():
    from rewardstack.cli import build_parser

    trainer = SERVICES["trainer"]
    args = build_parser().parse_args(argv(trainer["command"])[1:])
    mounts = dict(mount_target_source(v) for v in trainer["volumes"])
    assert mounts["/app/recipes"] == "./trainer/recipes"
    recipe = ROOT / "trainer" / "recipes" / Path(args.recipe).relative_to("recipes")
    assert recipe.is_file() and recipe in COMPOSE_RECIPES
    assert {"/app/outputs", "/app/data", "/cache"} <= set(mounts)
    assert trainer["profiles"] == ["train"] and trainer["deploy"]["resources"]["reservations"]["devices"]


def test_generation_serves_the_default_recipes_model_with_trl():
    from trl.scripts.vllm_serve import make_parser

    from trainer.recipe import load_recipe

    generation = SERVICES["generation"]
    args = argv(generation["command"])
    assert args[:2] == ["trl", "vllm-serve"]
    (script_args, extra) = make_parser().parse_args_and_config(args[2:], return_remaining_strings=True)
    assert extra == []
    default_recipe = load_recipe(ROOT / "trainer" / "recipes" / env_example()["RECIPE"], [])
    assert default_recipe.vllm.mode == "server"
    assert script_args.model == default_recipe.model.id
    assert urlsplit(default_recipe.vllm.server_url).port == script_args.port
    assert generation["profiles"] == ["train"]
    assert SERVICES["trainer"]["depends_on"]["generation"]["condition"] == "service_healthy"


def test_generation_healthcheck_is_the_route_trl_polls():
    import inspect

    from trl.generation.vllm_client import VLLMClient

    url = urlsplit(healthcheck_url(SERVICES["generation"]["healthcheck"]["test"]))
    assert url.port == _container_port("generation")
    assert f'f"{{self.base_url}}{url.path}"' in inspect.getsource(VLLMClient.check_server)
