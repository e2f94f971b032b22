"""The gateway's combining rule on scripted service answers: weights, nulls, reasons, failures, metrics.

No HTTP here (tests/services/gateway/test_routes.py runs real services): each service is a
stand-in whose coalescer answers at once with a scripted outcome, so every branch of the rule
that turns several rewards into one is reached with literal numbers.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time

import pytest
from prometheus_client import CollectorRegistry

from proto.client import RewardRequestError, RewardServiceError
from proto.gateway_config import GatewayConfig, GatewayConfigError
from proto.models import ErrorType, ImageData, ItemDetail, ItemStatus, ScoreItem
from services.common.errors import ServiceError
from services.common.scoring import Batch
from services.gateway.combine import Combined, Gateway, NoParams, _Service
from services.gateway.extract import Extractor
from tests.helpers import ROOT, await_until, free_port


class Scripted:
    """Stands in for a gateway service: its coalescer answers every submit with `outcome`."""

    def __init__(self, entry, outcome):
        self.entry, self.outcome, self.coalescer, self.not_ready = entry, outcome, self, None

    def submit(self, items, images):
        future = asyncio.get_running_loop().create_future()
        if isinstance(self.outcome, BaseException):
            future.set_exception(self.outcome)
        else:
            future.set_result(self.outcome(items))
        return future


def answers(*rewards, reason=None, parts=None):
    """An outcome giving these rewards, null ones `unscorable` with `reason`."""
    def outcome(items):
        assert len(items) == len(rewards)
        details = [ItemDetail(parts=parts or {}) if r is not None
                   else ItemDetail(status=ItemStatus.unscorable, reason=reason) for r in rewards]
        return list(rewards), details
    return outcome


def gateway(outcomes: dict, weights: dict | None = None, on_error: dict | None = None) -> Gateway:
    entries = [{"name": n, "url": f"http://{n}.invalid", "weight": (weights or {}).get(n, 1.0),
                "on_error": (on_error or {}).get(n, "skip")} for n in outcomes]
    gw = Gateway(GatewayConfig(rewards=entries))
    gw.registry = CollectorRegistry()  # kept for `sample`
    gw.register_metrics(gw.registry)
    gw.load()
    gw._services = {e.name: Scripted(e, outcomes[e.name]) for e in gw.entries}
    return gw


def items(n: int) -> list[ScoreItem]:
    return [ScoreItem(completion=str(i)) for i in range(n)]


def combine(gw: Gateway, n: int) -> list[Combined]:
    return asyncio.run(gw.combine(items(n), {}))


def sample(gw: Gateway, name: str, **labels) -> float | None:
    return gw.registry.get_sample_value(name, labels)


class TestTotal:
    def test_the_weighted_sum_of_every_reward(self):
        gw = gateway({"fmt": answers(1.0), "ans": answers(0.25)}, weights={"fmt": 0.5, "ans": 2.0})
        [c] = combine(gw, 1)
        assert c.rewards == {"fmt": 1.0, "ans": 0.25} and not c.unscored
        assert gw.total(c, None) == 0.5 * 1.0 + 2.0 * 0.25

    def test_a_null_reward_makes_the_total_null_or_counts_as_the_fallback(self):
        gw = gateway({"fmt": answers(1.0), "ans": answers(None, reason="no reference")},
                     weights={"fmt": 0.5, "ans": 2.0})
        [c] = combine(gw, 1)
        assert c.unscored and c.reasons == {"ans": "no reference"}
        assert gw.total(c, None) is None
        assert gw.total(c, 0.25) == 0.5 * 1.0 + 2.0 * 0.25

    def test_the_score_range_spans_negative_and_positive_weights(self):
        gw = gateway({"a": answers(1.0), "b": answers(1.0), "c": answers(1.0)},
                     weights={"a": 2.0, "b": -0.5, "c": 1.5})
        assert gw.score_range == (-0.5, 3.5)


class TestCombine:
    def test_each_item_gets_each_services_reward_and_parts_in_order(self):
        gw = gateway({"fmt": answers(1.0, 0.0, parts={"think": 1.0}), "ans": answers(0.5, None)})
        first, second = combine(gw, 2)
        assert first.rewards == {"fmt": 1.0, "ans": 0.5}
        assert first.parts == {"fmt": {"think": 1.0}, "ans": {}}
        assert second.rewards == {"fmt": 0.0, "ans": None}
        # A null without a reason is explained by its status.
        assert second.reasons == {"ans": "unscorable"}

    def test_no_items_no_calls(self):
        assert combine(gateway({"fmt": RuntimeError("must not be called")}), 0) == []

    @pytest.mark.parametrize("failure", [
        RewardServiceError("fmt", "http://fmt.invalid", "ConnectError"),
        OSError("connection reset"),
    ])
    def test_an_unavailable_service_leaves_nulls_that_say_so(self, failure):
        gw = gateway({"fmt": failure, "ans": answers(1.0, 1.0)})
        out = combine(gw, 2)
        assert [c.rewards for c in out] == [{"fmt": None, "ans": 1.0}] * 2
        assert all(c.reasons["fmt"] == f"service unavailable: {failure}" for c in out)
        assert all(c.parts["fmt"] == {} for c in out)
        assert sample(gw, "rewardstack_gateway_service_calls_total", service="fmt", outcome="unavailable") == 1
        assert sample(gw, "rewardstack_gateway_service_calls_total", service="ans", outcome="ok") == 1

    def test_on_error_abort_fails_the_request(self):
        gw = gateway({"fmt": RewardServiceError("fmt", "http://fmt.invalid", "down")}, on_error={"fmt": "abort"})
        with pytest.raises(ServiceError) as info:
            combine(gw, 1)
        assert info.value.type is ErrorType.upstream
        assert info.value.message.startswith("reward 'fmt' (on_error: abort): ")

    @pytest.mark.parametrize(("status", "kind"), [(422, ErrorType.validation), (413, ErrorType.validation),
                                                  (401, ErrorType.upstream), (500, ErrorType.upstream)])
    def test_a_refusal_is_an_error_naming_the_service_not_a_fallback(self, status, kind):
        refused = RewardRequestError("fmt", "http://fmt.invalid", status, "validation_error", "params.x: bad")
        gw = gateway({"fmt": refused, "ans": answers(1.0)})
        with pytest.raises(ServiceError) as info:
            combine(gw, 1)
        assert info.value.type is kind
        assert info.value.message == ("reward service 'fmt' refused the gateway's request "
                                      f"({status} validation_error): params.x: bad")
        assert sample(gw, "rewardstack_gateway_service_calls_total", service="fmt", outcome="refused") == 1

    def test_a_bug_is_raised_not_hidden(self):
        with pytest.raises(KeyError):
            combine(gateway({"fmt": KeyError("bug")}), 1)


class TestScore:
    def test_v1_score_total_with_every_reward_and_part_named(self):
        gw = gateway({"fmt": answers(1.0, parts={"think": 1.0}), "ans": answers(0.5)}, weights={"fmt": 0.5})
        [scored] = asyncio.run(gw.score(Batch(items(1), {}, NoParams())))
        assert (scored.reward, scored.status, scored.reason) == (1.0, ItemStatus.ok, None)
        assert scored.parts == {"fmt": 1.0, "ans": 0.5, "fmt/think": 1.0}

    def test_v1_score_null_names_every_service_that_could_not_score(self):
        gw = gateway({"fmt": answers(None, reason="too long"), "ans": answers(None, reason="no reference"),
                      "ok": answers(0.5)})
        [scored] = asyncio.run(gw.score(Batch(items(1), {}, NoParams())))
        assert (scored.reward, scored.status) == (None, ItemStatus.unscorable)
        assert scored.reason == "not scored by fmt: too long; ans: no reference"
        assert scored.parts == {"ok": 0.5}


class TestBookkeeping:
    def test_fallbacks_are_counted_per_route_and_service(self):
        gw = gateway({"fmt": answers(None, 1.0), "ans": answers(None, None)})
        gw.count_fallbacks("slime", combine(gw, 2))
        assert sample(gw, "rewardstack_gateway_fallbacks_total", route="slime", service="fmt") == 1
        assert sample(gw, "rewardstack_gateway_fallbacks_total", route="slime", service="ans") == 2

    def test_batches_are_observed_per_service(self):
        gw = gateway({"fmt": answers(1.0)})
        gw.metrics.child(gw.metrics.batch, "fmt").observe(3)
        assert sample(gw, "rewardstack_gateway_batch_items_count", service="fmt") == 1

    def test_readiness_names_the_services_not_ready(self):
        gw = gateway({"fmt": answers(1.0), "ans": answers(1.0)})
        assert gw.not_ready_reason() is None
        gw._services["ans"].not_ready = "HTTP 503 loading"
        assert gw.not_ready_reason() == "reward services not ready: ans (HTTP 503 loading)"
        gw._services = {}
        assert gw.not_ready_reason() == "starting: clients not open yet"

    def test_info_config_names_the_rewards(self):
        gw = gateway({"fmt": answers(1.0)}, weights={"fmt": 0.5})
        assert gw.config() == {"rewards": [{"name": "fmt", "urls": ["http://fmt.invalid"], "weight": 0.5,
                                            "params": {}}], "fallback": 0.0, "coalesce_ms": 5}
        assert Gateway().config() == {}

    def test_without_a_config_it_names_the_variable(self):
        with pytest.raises(GatewayConfigError, match=r"^GATEWAY_CONFIG is not set: point it at a rewards YAML$"):
            Gateway().load()


class TestMetricsExported:
    def test_names_and_labels_are_the_documented_ones(self):
        # docs/integrations.md lists the gateway's /metrics: dashboards are built from that list.
        docs = (ROOT / "docs" / "integrations.md").read_text()
        documented = dict(re.findall(r"`(?:rewardstack_gateway|\.\.\.)(_\w+?)(?:_total)?\{([\w, ]+)\}`", docs))
        families = {m.name: m for m in gateway({"fmt": answers(1.0)}).registry.collect()}
        exported = {name.removeprefix("rewardstack_gateway"): families[name] for name in families}
        assert set(exported) == set(documented)
        for suffix, family in exported.items():
            labels = [s.strip() for s in documented[suffix].split(",")]
            assert tuple(labels) == family_labels(family), suffix
            assert family.documentation and family.documentation != "None", suffix

    def test_each_power_of_two_batch_size_has_its_own_bucket(self):
        gw = gateway({"fmt": answers(1.0)})
        sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]
        for n in sizes:
            gw.metrics.child(gw.metrics.batch, "fmt").observe(n)
        counts = [sample(gw, "rewardstack_gateway_batch_items_bucket", service="fmt", le=f"{float(n)}")
                  for n in sizes]
        assert counts == list(range(1, len(sizes) + 1))


def family_labels(family) -> tuple[str, ...]:
    """The label names of a metric family (without the histogram's `le`)."""
    gw = Gateway(GatewayConfig(rewards=[{"name": "x", "url": "http://x.invalid"}]))
    gw.register_metrics(CollectorRegistry())
    metric = {m._name: m for m in vars(gw.metrics).values() if hasattr(m, "_labelnames")}
    return metric[family.name]._labelnames


class TestLifecycle:
    """Real services in-process (inproc://, the same app and contract without a socket)."""

    CONFIG = """
rewards:
  - {name: fmt, url: "inproc://regex_format", weight: 0.5, params: {mode: reasoning_solution}}
  - {name: ans, url: "inproc://vqa_accuracy", params: {mode: exact, answer_tag: SOLUTION}}
coalesce_ms: 20
ready_poll_s: 0.01
"""

    def test_start_poll_combine_observe_stop(self, tmp_path):
        path = tmp_path / "gateway.yaml"
        path.write_text(self.CONFIG)
        gw = Gateway(config_path=path)
        gw.registry = CollectorRegistry()
        gw.register_metrics(gw.registry)
        gw.load()
        assert isinstance(gw.extractor, Extractor)
        image = ImageData(b64=base64.b64encode(b"\x89PNG\r\n\x1a\n").decode())
        item = ScoreItem(completion="<REASONING>r</REASONING><SOLUTION>4</SOLUTION>", reference="4",
                         image_id="img")
        began = time.perf_counter()

        async def scenario():
            await gw.start()
            try:
                first_poll = gw.not_ready_reason()
                assert all(s.coalescer.window_s == 0.02 for s in gw._services.values())
                [scored] = await asyncio.wait_for(gw.score(Batch([item], {"img": image}, NoParams())), 60)
                # The poller keeps reading /readyz: a stale reason is replaced by the next poll.
                gw._services["ans"].not_ready = "stale"
                await await_until(lambda: gw.not_ready_reason() is None, "the poller read /readyz again")
                poller = gw._poller
            finally:
                await gw.stop()
            await asyncio.sleep(0)
            return first_poll, scored, poller

        first_poll, scored, poller = asyncio.run(scenario())
        assert first_poll is None and poller.cancelled()
        assert (scored.reward, scored.parts["fmt"], scored.parts["ans"]) == (1.5, 1.0, 1.0)
        for name in ("fmt", "ans"):
            assert sample(gw, "rewardstack_gateway_batch_items_sum", service=name) == 1
            assert sample(gw, "rewardstack_gateway_service_calls_total", service=name, outcome="ok") == 1
            spent = sample(gw, "rewardstack_gateway_service_seconds_sum", service=name)
            assert 0 <= spent <= time.perf_counter() - began  # the call's own duration

    def test_a_service_whose_readyz_does_not_answer_keeps_the_gateway_not_ready(self):
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here
        gw = Gateway(GatewayConfig(rewards=[{"name": "gone", "url": dead}], ready_poll_s=60))
        gw.load()

        async def scenario():
            await gw.start()
            try:
                return gw.not_ready_reason()
            finally:
                await gw.stop()

        assert asyncio.run(scenario()) == f"reward services not ready: gone ({dead}: ConnectError)"

    def test_before_the_first_poll_nothing_is_ready(self):
        gw = gateway({"fmt": answers(1.0), "ans": answers(1.0)})
        gw._services = {e.name: _Service(e, gw.setup, None) for e in gw.entries}
        assert gw.not_ready_reason() == "reward services not ready: fmt (not checked yet), ans (not checked yet)"

    def test_without_metrics_it_still_combines(self):
        gw = Gateway(GatewayConfig(rewards=[{"name": "fmt", "url": "http://fmt.invalid"}]))
        gw.load()
        gw._services = {"fmt": Scripted(gw.entries[0], answers(1.0))}
        assert [c.rewards for c in asyncio.run(gw.combine(items(1), {}))] == [{"fmt": 1.0}]
        _Service(gw.entries[0], gw.setup, None)._observe(3)  # no metrics: nothing to observe into

    def test_stop_before_start_is_harmless(self):
        asyncio.run(Gateway(GatewayConfig(rewards=[{"name": "fmt", "url": "http://fmt.invalid"}])).stop())

    def test_label_children_stay_apart_per_metric(self):
        gw = gateway({"fmt": answers(1.0)})
        combine(gw, 1)  # a call latency observed for "fmt"
        gw.metrics.child(gw.metrics.batch, "fmt").observe(3)
        assert sample(gw, "rewardstack_gateway_batch_items_sum", service="fmt") == 3
        assert sample(gw, "rewardstack_gateway_service_seconds_count", service="fmt") == 1
