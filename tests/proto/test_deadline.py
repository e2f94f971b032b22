"""What a client sends as deadline_ms: its remaining budget less a margin, spliced into the body."""

import pytest

from proto.deadline import MARGIN_S, deadline_ms, deadline_payload, stamped
from proto.models import MAX_DEADLINE_MS, ScoreRequest, ServiceInfo, ServiceLimits


@pytest.mark.parametrize("remaining_s", [0.004, 0.2, 1.0, 3.5, 60.0, 600.0])
def test_deadline_leaves_a_margin_for_the_answer(remaining_s):
    sent = deadline_ms(remaining_s)
    assert 1 <= sent < remaining_s * 1000
    assert sent >= (remaining_s - MARGIN_S) * 1000 - 1  # never more kept back than the margin
    assert sent >= remaining_s * 1000 * 3 / 4 - 1  # nor more than a quarter of a short budget


def test_deadline_stays_inside_the_contract():
    assert deadline_ms(0.0) == 1 and deadline_ms(-3.0) == 1
    assert deadline_ms(10 * MAX_DEADLINE_MS / 1000) == MAX_DEADLINE_MS


def test_stamped_body_is_the_same_request_with_its_deadline():
    request = ScoreRequest(items=[{"completion": "x", "reference": "y"}], params={"k": 1})
    body = stamped(request.model_dump_json(exclude_defaults=True).encode(), 3.5)
    again = ScoreRequest.model_validate_json(body)
    assert again.deadline_ms == 3000
    assert again.model_dump(exclude={"deadline_ms"}) == request.model_dump(exclude={"deadline_ms"})


def test_stamped_refuses_what_is_not_a_request_object():
    with pytest.raises(ValueError):
        stamped(b"[1, 2]", 1.0)


def _info(grace_ms):
    limits = ServiceLimits(max_batch=8, max_body_bytes=1024, max_concurrency=1, max_queue=1,
                           deadline_grace_ms=grace_ms)
    return ServiceInfo(name="s", version="1", score_range=(0, 1), params_schema={}, limits=limits,
                       fingerprint="f")


def test_a_service_that_predates_deadlines_gets_the_body_unchanged():
    body = b'{"items":[{"completion":"x"}]}'
    assert deadline_payload(body, _info(None)) is body
    assert deadline_payload(body, None) is body
    stamp = deadline_payload(body, _info(50.0))
    assert ScoreRequest.model_validate_json(stamp(2.0)).deadline_ms == 1500
