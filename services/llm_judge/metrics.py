"""The judge's own Prometheus metrics: upstream calls, tokens, cost, cache hits, late calls, hedges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class JudgeMetrics:
    """Counters on a private registry until the framework hands over its own via `bind`."""

    def __init__(self) -> None:
        self.bind(CollectorRegistry())

    def bind(self, registry: CollectorRegistry) -> None:
        r = registry
        self.registry = registry
        self.calls = Counter(
            "llm_judge_upstream_calls",
            "HTTP calls to the judge API by outcome (HTTP status, 'timeout', 'transport', or "
            "'cancelled': out when a hedge won or the call was dropped)",
            ["status"], registry=r,
        )
        self.tokens = Counter(
            "llm_judge_tokens", "Tokens reported by the judge API", ["kind"], registry=r
        )
        self.cost = Counter(
            "llm_judge_cost_usd", "USD spent on judge calls (usage.cost, else configured prices)",
            registry=r,
        )
        self.unpriced = Counter(
            "llm_judge_unpriced_calls", "Judge calls whose cost is unknown", registry=r
        )
        self.cache_hits = Counter(
            "llm_judge_cache_hits",
            "Items answered without a call: 'done' from finished calls, 'inflight' by sharing one",
            ["kind"], registry=r,
        )
        self.prechecked = Counter(
            "llm_judge_prechecked_items", "Items scored 0.0 by a pre-check, without a call", registry=r
        )
        self.late_calls = Counter(
            "llm_judge_late_calls",
            "Calls still running when every request waiting for them had passed its deadline, by "
            "what became of them: 'cached' (an ok answer, kept for a retry), 'failed', 'cancelled' "
            "(over LLM_JUDGE_KEEP_LATE_CALLS)",
            ["outcome"], registry=r,
        )
        self.hedges = Counter(
            "llm_judge_hedges",
            "Hedged calls: 'sent' (a second call after LLM_JUDGE_HEDGE_AFTER_MS), 'won' (it answered "
            "first)", ["outcome"], registry=r,
        )
        self.budget_spent = Gauge(
            "llm_judge_budget_spent_usd", "USD counted against LLM_JUDGE_BUDGET_USD", registry=r
        )
