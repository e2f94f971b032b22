"""The gateway's combining rule on scripted service answers: weights, nulls, reasons, failures, metrics.

No HTTP here (tests/services/gateway/test_routes.py runs real services): each service is a
stand-in whose coalescer answers at once with a scripted outcome, so every branch of the rule
that turns several rewards into one is reached with literal numbers.
"""

from __future__ import annotations

import asyncio

import pytest

from proto.client import RewardRequestError, RewardServiceError
from proto.gateway_config import GatewayConfigError
from proto.models import ErrorType, ItemStatus
from services.common.errors import ServiceError
from services.common.scoring import Batch
from services.gateway.combine import Gateway, NoParams
from tests.services.gateway.support import answers, combine, items, sample, scripted_gateway


class TestTotal:
    def test_the_weighted_sum_of_every_reward(self):
        gw = scripted_gateway({"fmt": answers(1.0), "ans": answers(0.25)}, weights={"fmt": 0.5, "ans": 2.0})
        [c] = combine(gw, 1)
        assert c.rewards == {"fmt": 1.0, "ans": 0.25} and not c.unscored
        assert gw.total(c, None) == 0.5 * 1.0 + 2.0 * 0.25

    def test_a_null_reward_makes_the_total_null_or_counts_as_the_fallback(self):
        gw = scripted_gateway({"fmt": answers(1.0), "ans": answers(None, reason="no reference")},
                     weights={"fmt": 0.5, "ans": 2.0})
        [c] = combine(gw, 1)
        assert c.unscored and c.reasons == {"ans": "no reference"}
        assert gw.total(c, None) is None
        assert gw.total(c, 0.25) == 0.5 * 1.0 + 2.0 * 0.25

    def test_the_score_range_spans_negative_and_positive_weights(self):
        gw = scripted_gateway({"a": answers(1.0), "b": answers(1.0), "c": answers(1.0)},
                     weights={"a": 2.0, "b": -0.5, "c": 1.5})
        assert gw.score_range == (-0.5, 3.5)


class TestCombine:
    def test_each_item_gets_each_services_reward_and_parts_in_order(self):
        gw = scripted_gateway({"fmt": answers(1.0, 0.0, parts={"think": 1.0}), "ans": answers(0.5, None)})
        first, second = combine(gw, 2)
        assert first.rewards == {"fmt": 1.0, "ans": 0.5}
        assert first.parts == {"fmt": {"think": 1.0}, "ans": {}}
        assert second.rewards == {"fmt": 0.0, "ans": None}
        # A null without a reason is explained by its status.
        assert second.reasons == {"ans": "unscorable"}

    def test_no_items_no_calls(self):
        assert combine(scripted_gateway({"fmt": RuntimeError("must not be called")}), 0) == []

    @pytest.mark.parametrize("failure", [
        RewardServiceError("fmt", "http://fmt.invalid", "ConnectError"),
        OSError("connection reset"),
    ])
    def test_an_unavailable_service_leaves_nulls_that_say_so(self, failure):
        gw = scripted_gateway({"fmt": failure, "ans": answers(1.0, 1.0)})
        out = combine(gw, 2)
        assert [c.rewards for c in out] == [{"fmt": None, "ans": 1.0}] * 2
        assert all(c.reasons["fmt"] == f"service unavailable: {failure}" for c in out)
        assert all(c.parts["fmt"] == {} for c in out)
        assert sample(gw, "rewardstack_gateway_service_calls_total", service="fmt", outcome="unavailable") == 1
        assert sample(gw, "rewardstack_gateway_service_calls_total", service="ans", outcome="ok") == 1

    def test_on_error_abort_fails_the_request(self):
        gw = scripted_gateway({"fmt": RewardServiceError("fmt", "http://fmt.invalid", "down")}, on_error={"fmt": "abort"})
        with pytest.raises(ServiceError) as info:
            combine(gw, 1)
        assert info.value.type is ErrorType.upstream
        assert info.value.message.startswith("reward 'fmt' (on_error: abort): ")

    @pytest.mark.parametrize(("status", "kind"), [(422, ErrorType.validation), (413, ErrorType.validation),
                                                  (401, ErrorType.upstream), (500, ErrorType.upstream)])
    def test_a_refusal_is_an_error_naming_the_service_not_a_fallback(self, status, kind):
        refused = RewardRequestError("fmt", "http://fmt.invalid", status, "validation_error", "params.x: bad")
        gw = scripted_gateway({"fmt": refused, "ans": answers(1.0)})
        with pytest.raises(ServiceError) as info:
            combine(gw, 1)
        assert info.value.type is kind
        assert info.value.message == ("reward service 'fmt' refused the gateway's request "
                                      f"({status} validation_error): params.x: bad")
        assert sample(gw, "rewardstack_gateway_service_calls_total", service="fmt", outcome="refused") == 1

    def test_a_bug_is_raised_not_hidden(self):
        with pytest.raises(KeyError):
            combine(scripted_gateway({"fmt": KeyError("bug")}), 1)


class TestScore:
    def test_v1_score_total_with_every_reward_and_part_named(self):
        gw = scripted_gateway({"fmt": answers(1.0, parts={"think": 1.0}), "ans": answers(0.5)}, weights={"fmt": 0.5})
        [scored] = asyncio.run(gw.score(Batch(items(1), {}, NoParams())))
        assert (scored.reward, scored.status, scored.reason) == (1.0, ItemStatus.ok, None)
        assert scored.parts == {"fmt": 1.0, "ans": 0.5, "fmt/think": 1.0}

    def test_v1_score_null_names_every_service_that_could_not_score(self):
        gw = scripted_gateway({"fmt": answers(None, reason="too long"), "ans": answers(None, reason="no reference"),
                      "ok": answers(0.5)})
        [scored] = asyncio.run(gw.score(Batch(items(1), {}, NoParams())))
        assert (scored.reward, scored.status) == (None, ItemStatus.unscorable)
        assert scored.reason == "not scored by fmt: too long; ans: no reference"
        assert scored.parts == {"ok": 0.5}


class TestBookkeeping:
    def test_fallbacks_are_counted_per_route_and_service(self):
        gw = scripted_gateway({"fmt": answers(None, 1.0), "ans": answers(None, None)})
        gw.count_fallbacks("slime", combine(gw, 2))
        assert sample(gw, "rewardstack_gateway_fallbacks_total", route="slime", service="fmt") == 1
        assert sample(gw, "rewardstack_gateway_fallbacks_total", route="slime", service="ans") == 2

    def test_batches_are_observed_per_service(self):
        gw = scripted_gateway({"fmt": answers(1.0)})
        gw.metrics.child(gw.metrics.batch, "fmt").observe(3)
        assert sample(gw, "rewardstack_gateway_batch_items_count", service="fmt") == 1

    def test_readiness_names_the_services_not_ready(self):
        gw = scripted_gateway({"fmt": answers(1.0), "ans": answers(1.0)})
        assert gw.not_ready_reason() is None
        gw._services["ans"].not_ready = "HTTP 503 loading"
        assert gw.not_ready_reason() == "reward services not ready: ans (HTTP 503 loading)"
        gw._services = {}
        assert gw.not_ready_reason() == "starting: clients not open yet"

    def test_info_config_names_the_rewards(self):
        gw = scripted_gateway({"fmt": answers(1.0)}, weights={"fmt": 0.5})
        assert gw.config() == {"rewards": [{"name": "fmt", "urls": ["http://fmt.invalid"], "weight": 0.5,
                                            "params": {}}], "fallback": 0.0, "coalesce_ms": 5}
        assert Gateway().config() == {}

    def test_without_a_config_it_names_the_variable(self):
        with pytest.raises(GatewayConfigError, match=r"^GATEWAY_CONFIG is not set: point it at a rewards YAML$"):
            Gateway().load()
