"""The gateway's exported metrics and its lifecycle over inproc://: start, readiness, the poller, close."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
import types

from prometheus_client import CollectorRegistry

from proto.client import RewardServiceError
from proto.gateway_config import GatewayConfig
from proto.models import ImageData, ItemDetail, ScoreItem
from services.common.scoring import Batch
from services.gateway.combine import Gateway, NoParams, _Service
from services.gateway.extract import Extractor
from tests.helpers import ROOT, await_until, free_port
from tests.services.gateway.support import Scripted, answers, combine, items, sample, scripted_gateway


class TestMetricsExported:
    def test_names_and_labels_are_the_documented_ones(self):
        # docs/integrations.md lists the gateway's /metrics: dashboards are built from that list.
        docs = (ROOT / "docs" / "integrations.md").read_text()
        documented = dict(re.findall(r"`(?:rewardstack_gateway|\.\.\.)(_\w+?)(?:_total)?\{([\w, ]+)\}`", docs))
        families = {m.name: m for m in scripted_gateway({"fmt": answers(1.0)}).registry.collect()}
        exported = {name.removeprefix("rewardstack_gateway"): families[name] for name in families}
        assert set(exported) == set(documented)
        for suffix, family in exported.items():
            labels = [s.strip() for s in documented[suffix].split(",")]
            assert tuple(labels) == family_labels(family), suffix
            assert family.documentation and family.documentation != "None", suffix

    def test_each_power_of_two_batch_size_has_its_own_bucket(self):
        gw = scripted_gateway({"fmt": answers(1.0)})
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
        gw = scripted_gateway({"fmt": answers(1.0), "ans": answers(1.0)})
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
        gw = scripted_gateway({"fmt": answers(1.0)})
        combine(gw, 1)  # a call latency observed for "fmt"
        gw.metrics.child(gw.metrics.batch, "fmt").observe(3)
        assert sample(gw, "rewardstack_gateway_batch_items_sum", service="fmt") == 3
        assert sample(gw, "rewardstack_gateway_service_seconds_count", service="fmt") == 1


class _Limits:
    """The one service a poll may fit to: ready or not, its /v1/info limits or an error."""

    def __init__(self, ready=None, error=None):
        self.not_ready, self.error, self.info_calls = ready, error, 0

    async def ready(self):
        return self.not_ready

    async def info(self):
        self.info_calls += 1
        if self.error is not None:
            raise self.error
        return types.SimpleNamespace(limits=types.SimpleNamespace(max_batch=256, max_concurrency=1))


class TestFitting:
    @staticmethod
    def service(client, **config):
        gw = Gateway(GatewayConfig(rewards=[{"name": "fmt", "url": "http://fmt.invalid"}], **config))
        gw.load()
        gw._services = {e.name: _Service(e, gw.setup, None) for e in gw.entries}  # as start() builds them
        svc = gw._services["fmt"]
        svc.client = client
        return gw, svc

    def test_a_ready_service_is_fitted_once_to_its_concurrency(self):
        gw, svc = self.service(_Limits())
        asyncio.run(gw._poll_once())
        asyncio.run(gw._poll_once())
        assert (svc.fitted, svc.coalescer.max_in_flight, svc.client.info_calls) == (True, 1, 1)

    def test_a_service_not_ready_is_not_asked_its_limits(self):
        gw, svc = self.service(_Limits(ready="starting"))
        asyncio.run(gw._poll_once())
        assert (svc.not_ready, svc.fitted, svc.client.info_calls, svc.coalescer.max_in_flight) == (
            "starting", False, 0, 4)

    def test_unreadable_limits_are_logged_naming_the_reward_and_retried(self, caplog):
        gw, svc = self.service(_Limits(error=RewardServiceError("fmt", "http://fmt.invalid", "boom")))
        with caplog.at_level(logging.WARNING, logger="services.gateway.combine"):
            asyncio.run(gw._poll_once())
            asyncio.run(gw._poll_once())
        assert (svc.fitted, svc.client.info_calls) == (False, 2)
        assert caplog.messages[0] == ("reward 'fmt': /v1/info unreadable, its limits not known yet: "
                                      "reward service 'fmt' at http://fmt.invalid gave no answer: boom")

    def test_the_configured_max_batch_flushes_before_the_window(self):
        _, svc = self.service(_Limits(), coalesce_ms=1000, max_batch=2)
        sent = []

        class Client:
            async def score(self, items, images=None, params=None):
                sent.append(len(items))
                return types.SimpleNamespace(rewards=[1.0] * len(items),
                                             details=[ItemDetail() for _ in items])

        svc.coalescer.client = Client()

        async def scenario():
            futures = [svc.coalescer.submit(items(1), {}) for _ in range(2)]
            return await asyncio.wait_for(asyncio.gather(*futures), 0.5)  # far inside the 1 s window

        asyncio.run(scenario())
        assert sent == [2]
