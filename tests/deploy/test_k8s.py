"""deploy/k8s without a cluster: every manifest against the Kubernetes schemas (kubernetes-validate
ships them; no network), probes on real routes, Services and HPAs wired to their Deployments, the
judge's key only by reference, and the multi-node trainer's recipe and launch consistent."""

from __future__ import annotations

from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.support import (
    K8S_DIR,
    env_names,
    k8s_manifests,
    kustomizations,
    kustomize_data_files,
    load_app,
    route_paths,
    settings_class,
    uvicorn_target,
)

K8S_VERSION = "1.33"  # preStop `sleep` needs 1.30+; clusters a year old run 1.33
MANIFESTS = k8s_manifests()
BASE = {(d["kind"], d["metadata"]["name"]): d for p, d in MANIFESTS if p.parent == K8S_DIR / "base"}
DEPLOYMENTS = {name: d for (kind, name), d in BASE.items() if kind == "Deployment"}
RUNTIME_ENV = {"HF_HOME", "OMP_NUM_THREADS"}


@pytest.fixture(autouse=True)
def _judge_key(monkeypatch):
    monkeypatch.setenv("LLM_JUDGE_API_KEY", "sk-test")


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("path,doc", MANIFESTS, ids=[f"{p.name}:{d['kind']}" for p, d in MANIFESTS])
def test_manifest_validates_against_the_kubernetes_schema(path, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_rejects_a_misspelt_field():
    doc = yaml.safe_load(yaml.safe_dump(DEPLOYMENTS["regex-format"]))
    doc["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {"httpGet": {"path": "/readyz", "port": 8000}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("kustomization", kustomizations(), ids=lambda p: p.parent.name)
def test_kustomization_lists_every_manifest_beside_it(kustomization):
    k = yaml.safe_load(kustomization.read_text())
    listed = {(kustomization.parent / r).resolve() for r in k["resources"]}
    assert all(p.is_file() for p in listed)
    present = {p.resolve() for p in kustomization.parent.rglob("*.yaml") if p != kustomization}
    assert present - kustomize_data_files(kustomization) == listed


def test_every_reward_service_has_a_deployment_service_and_autoscaler():
    services = {uvicorn_target(_container(d)["command"]).service for d in DEPLOYMENTS.values()}
    assert services == {"regex_format", "math_equiv", "vqa_accuracy", "clip_cider", "llm_judge", "gateway"}
    for name, deployment in DEPLOYMENTS.items():
        service, hpa = BASE[("Service", name)], BASE[("HorizontalPodAutoscaler", name)]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ports = {p["name"]: p["containerPort"] for p in _container(deployment)["ports"]}
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"] and "http" in ports
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["spec"]["maxReplicas"] > 1
        assert _container(deployment)["resources"]["requests"]["cpu"], "a CPU HPA needs a CPU request"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_probes_point_at_routes_the_app_serves(name):
    container = _container(DEPLOYMENTS[name])
    target = uvicorn_target(container["command"])
    routes = route_paths(load_app(target.module, target.attr))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        if kind in container:
            get = container[kind]["httpGet"]
            assert get["path"] in routes
            assert ports.get(get["port"], get["port"]) == target.port


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_env_vars_are_settings_of_the_service(name, monkeypatch):
    container = _container(DEPLOYMENTS[name])
    cls = settings_class(uvicorn_target(container["command"]).service)
    names = {e["name"] for e in container.get("env", [])}
    assert names - env_names(cls) - RUNTIME_ENV == set()
    for var in env_names(cls):
        monkeypatch.delenv(var, raising=False)
    for e in container.get("env", []):
        monkeypatch.setenv(e["name"], e.get("value", "from-a-secret"))
    cls()


def test_clip_cider_requests_a_gpu_and_uses_it():
    container = _container(DEPLOYMENTS["clip-cider"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {e["name"]: e.get("value") for e in container["env"]}["CLIP_CIDER_CLIP_DEVICE"] == "cuda"


def test_the_judge_key_comes_from_a_secret_reference():
    env = {e["name"]: e for e in _container(DEPLOYMENTS["llm-judge"])["env"]}
    assert env["OPENROUTER_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "llm-judge", "key": "OPENROUTER_API_KEY"}
    assert "value" not in env["OPENROUTER_API_KEY"]


def test_no_secret_value_is_inlined_anywhere_in_deploy():
    for path, doc in MANIFESTS:
        if doc["kind"] == "Secret":
            values = {**doc.get("data", {}), **doc.get("stringData", {})}
            assert not any(values.values()), f"{path} inlines a secret; reference one created by kubectl"
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for e in container.get("env", []):
                if any(w in e["name"].upper() for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")):
                    assert "value" not in e, f"{path}: {e['name']} has a literal value"
    for kustomization in kustomizations():
        assert "secretGenerator" not in yaml.safe_load(kustomization.read_text())


def _trainer_files() -> tuple[dict, dict, dict]:
    job = next(d for p, d in MANIFESTS if d["kind"] == "Job")
    files = K8S_DIR / "trainer" / "files"
    accelerate = yaml.safe_load((files / "accelerate-zero3-2x8.yaml").read_text())
    return job, accelerate, _container(job)


def test_trainer_job_launch_matches_the_accelerate_config():
    job, accelerate, container = _trainer_files()
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == accelerate["num_machines"]
    gpus = int(container["resources"]["limits"]["nvidia.com/gpu"])
    assert accelerate["num_processes"] == accelerate["num_machines"] * gpus
    assert accelerate["distributed_type"] == "DEEPSPEED"
    script = " ".join(container["args"])
    assert "--machine_rank \"${JOB_COMPLETION_INDEX}\"" in script
    # Pod 0's stable name: <job>-0.<headless service>, and that Service is headless.
    headless = next(d for p, d in MANIFESTS if d["kind"] == "Service" and d["metadata"]["name"] == job["spec"]["template"]["spec"]["subdomain"])
    assert headless["spec"]["clusterIP"] == "None"
    assert f"--main_process_ip {job['metadata']['name']}-0.{headless['metadata']['name']}" in script
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/app/recipes", "/app/data", "/app/outputs", "/dev/shm"} <= mounted


def test_trainer_recipe_reaches_the_rewards_through_their_services():
    from trainer.recipe import load_recipe

    _, _, container = _trainer_files()
    recipe = load_recipe(K8S_DIR / "trainer" / "files" / "recipe.yaml", [])
    assert "/app/recipes/recipe.yaml" in " ".join(container["args"])
    namespace = yaml.safe_load((K8S_DIR / "base" / "kustomization.yaml").read_text())["namespace"]
    for url in (u for r in recipe.rewards for u in r.endpoints):
        parts = urlsplit(url)
        name, *rest = parts.hostname.split(".")
        assert rest in ([], [namespace, "svc"], [namespace, "svc", "cluster", "local"]), url
        service = BASE[("Service", name)]
        assert parts.port in {p["port"] for p in service["spec"]["ports"]}
