"""The gateway's shipped configs load, and their URLs name the services compose and k8s define."""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from proto.gateway_config import load_config
from tests.helpers import ROOT


def test_example_config_loads():
    cfg = load_config(ROOT / "trainer" / "examples" / "gateway.yaml")
    assert [e.name for e in cfg.rewards] == ["format", "answer"]


def test_compose_config_names_compose_services_the_gateway_waits_for():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    gw = compose["services"]["gateway"]
    mount = f"./deploy/gateway/compose-rewards.yaml:{gw['environment']['GATEWAY_CONFIG']}:ro"
    assert mount in gw["volumes"]
    for entry in load_config(ROOT / "deploy" / "gateway" / "compose-rewards.yaml").rewards:
        url = urlsplit(entry.url)
        assert url.hostname in compose["services"] and url.port == 8000
        assert gw["depends_on"][url.hostname] == {"condition": "service_healthy"}


def test_k8s_config_names_k8s_services_and_is_the_mounted_configmap():
    base = ROOT / "deploy" / "k8s" / "base"
    docs = [d for p in base.glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    services = {d["metadata"]["name"] for d in docs if d.get("kind") == "Service"}
    for entry in load_config(base / "gateway-rewards.yaml").rewards:
        url = urlsplit(entry.url)
        assert url.hostname in services and url.port == 8000
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert {"name": "gateway-rewards", "files": ["gateway-rewards.yaml"]} in kustomization["configMapGenerator"]
