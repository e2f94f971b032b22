"""A controllable scorer for framework tests: completions are commands (sleep, fail, echo length)."""

from __future__ import annotations

import os
import threading
import time

from pydantic import BaseModel, ConfigDict
from pydantic_settings import SettingsConfigDict

from services.common.app import create_app
from services.common.params import FiniteFloat
from services.common.scoring import Batch, ParamsError, Scored, UpstreamError, score_each
from services.common.settings import ServiceSettings


class ToySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TOY_", extra="ignore")


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: FiniteFloat = 1.0


# `hold` items block their scoring thread until a test sets this (or 30 s pass: a hang guard).
RELEASE = threading.Event()


class ToyScorer:
    """`len:<text>` -> len(text) * scale; `sleep:<s>` -> sleeps; `hold` -> sets `holding` and waits
    for `release` or RELEASE (a test then knows scoring is under way); `left` -> milliseconds left
    before the request's deadline (-1 without one); `boom` -> an item error;
    `crash` / `upstream` / `badparam` -> whole-request failures of each kind."""

    name = "toy"
    version = "0.0.1"
    score_range = (0.0, 1e9)
    params_model = ToyParams

    def __init__(self):
        self.loaded = False
        self.holding, self.release = threading.Event(), threading.Event()

    def load(self):
        self.loaded = True

    def close(self):
        pass

    def config(self):
        return {"kind": "toy"}

    def score(self, batch: Batch) -> list[Scored]:
        commands = {it.completion for it in batch.items}
        if "crash" in commands:
            raise RuntimeError("secret internal detail")
        if "upstream" in commands:
            raise UpstreamError("the upstream API is down")
        if "badparam" in commands:
            raise ParamsError("this param combination is unsupported")
        return score_each(batch.items, lambda it: self._one(it.completion, batch.params.scale, batch))

    def _one(self, command: str, scale: float, batch: Batch) -> Scored:
        if command == "left":
            return Scored.ok(-1 if batch.deadline is None else (batch.deadline - time.monotonic()) * 1000)
        if command.startswith("sleep:"):
            time.sleep(float(command.split(":", 1)[1]))
            return Scored.ok(1.0)
        if command == "hold":
            self.holding.set()
            # A hang guard, not a pace: the test sets `release` (this scorer) or RELEASE (every
            # scorer, for tests that never see the instance) as soon as it has looked.
            guard = time.monotonic() + 60
            while not (self.release.wait(0.005) or RELEASE.is_set()):
                if time.monotonic() > guard:
                    return Scored.ok(0.0)
            return Scored.ok(1.0)
        if command == "boom":
            raise ValueError("item-level bug")
        if command == "unscorable":
            return Scored.unscorable("reference_unparseable: no reference")
        return Scored.ok(len(command.removeprefix("len:")) * scale)


def make_app(**settings):
    return create_app(ToyScorer(), ToySettings(**settings))


# For process-level tests: `uvicorn tests.services.common.toy:app`, configured by TOY_* env vars.
app = make_app() if os.environ.get("TOY_APP") else None
