"""Checks that run before a model loads: a recipe that would fail at step 1 fails here, in seconds.

`check_static` needs nothing but the recipe: reward URLs that name a real service, tokens that are
set, local data files that exist. `score_first_row` then sends ONE real dataset row through each
reward with the recipe's params, so a params block the service refuses, a `reference` column
the data lacks, or a service that does not answer stops the run before a model is loaded and
before any checkpoint exists. It is the one contact with each service before training: its
client is built as training's (`RewardEntry.client()`), so a service refusing connections is
given up after the entry's `unreachable_s`, not its `timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from integrations.trl_items import DEFAULT_REFERENCE_COLUMNS, build_items
from proto.client import RewardRequestError, RewardServiceError
from proto.rewards import failure_cause
from trainer.endpoints import url_problem
from trainer.recipe import Recipe, RewardEntry

log = logging.getLogger(__name__)


class PreflightError(ValueError):
    """The recipe cannot train or evaluate as written; the message names the setting and the fix."""


def preflight(recipe: Recipe, dataset=None):
    """Train's checks before the model loads; returns the dataset it built, for the trainer to reuse."""
    check_static(recipe)
    if dataset is None:
        from trainer.data import build_dataset

        with explain_data_errors(recipe):
            dataset, _summary = build_dataset(recipe.data)
    if len(dataset):
        score_first_row(recipe, dataset[0])
    return dataset


def preflight_eval(recipe: Recipe, load_rows: Callable[[], tuple[list[dict], Any]]):
    """Eval's checks before the model loads; returns what `load_rows` loaded (rows, summary)."""
    check_static(recipe)
    with explain_data_errors(recipe):
        rows, summary = load_rows()
    if rows:
        score_first_row(recipe, rows[0])
    return rows, summary


@contextlib.contextmanager
def explain_data_errors(recipe: Recipe) -> Iterator[None]:
    """A dataset that cannot be reached or found becomes one message naming the setting and the fix."""
    try:
        yield
    except (ConnectionError, FileNotFoundError) as exc:
        data = recipe.data
        where = f"data.path {data.path}" if data.path else f"data.hub_id {data.hub_id}"
        raise PreflightError(
            f"{where} ({data.source}) cannot be loaded: {exc}. Download it while online, or point "
            "data.path at a local copy (docs/recipes.md, 'Getting the data')"
        ) from None


def check_static(recipe: Recipe) -> None:
    """Everything that can be checked without data or services; all problems reported at once."""
    problems = [p for i, e in enumerate(recipe.rewards) for p in _entry_problems(i, e)]
    for key in ("path", "eval_path", "image_root"):
        value = getattr(recipe.data, key)
        if value is not None and not value.exists():
            problems.append(f"data.{key}: {value} does not exist; fix the path (see docs/recipes.md, "
                            "'Getting the data')")
    if problems:
        raise PreflightError("\n  ".join(["the recipe cannot run:", *problems]))


def _entry_problems(i: int, entry: RewardEntry) -> list[str]:
    where = f"rewards[{i}] ({entry.name})"
    problems = [f"{where}.url: {why}" for url in entry.endpoints if (why := url_problem(url))]
    if entry.token_env and not os.environ.get(entry.token_env):
        problems.append(f"{where}.token_env: {entry.token_env} is not set; export it, or remove token_env "
                        "if the service needs no token")
    return problems


def score_first_row(recipe: Recipe, row: dict[str, Any]) -> None:
    """Score `row` through every reward with the recipe's params; refusals raise PreflightError."""
    problems = asyncio.run(_score_all(recipe, row))
    if problems:
        raise PreflightError("\n  ".join(["the first dataset row could not be scored:", *problems]))


async def _score_all(recipe: Recipe, row: dict[str, Any]) -> list[str]:
    found = await asyncio.gather(*(_score_one(i, e, row) for i, e in enumerate(recipe.rewards)))
    return [p for p in found if p]


async def _score_one(i: int, entry: RewardEntry, row: dict[str, Any]) -> str | None:
    where = f"rewards[{i}] ({entry.name})"
    columns = {k: [v] for k, v in row.items() if k != "prompt"}
    wanted = (entry.reference,) if entry.reference else DEFAULT_REFERENCE_COLUMNS
    if entry.reference and entry.reference not in row:
        return f"{where}.reference: the data has no column {entry.reference!r}; columns: {', '.join(row)}"
    solution = next((row[c] for c in wanted if row.get(c) is not None), "")
    completion = f"<think>preflight</think><answer>{_first(solution)}</answer>"
    items, images = build_items([row.get("prompt")], [completion], columns,
                                reference=entry.reference, send_images=entry.send_images,
                                image_root=entry.image_root)
    try:
        async with entry.client() as client:
            res = await client.score(items, images=images, params=entry.params)
    except RewardRequestError as exc:
        return f"{where}: {exc.url} refused params {entry.params} ({exc.error_type}): {exc.message}"
    except RewardServiceError as exc:
        # Whatever on_error says: `skip` rides out an outage during a run, but a run that starts
        # against a service that does not answer would only score nulls from its first step.
        return f"{where} at {exc.url}: {failure_cause(exc)}; start the service or fix the url"
    log.info("reward %r -> %s %s at %s", entry.name, res.service, res.version, ", ".join(entry.endpoints))
    if res.rewards[0] is None:
        log.warning("%s: the first row's reward is null (%s: %s); every row may be", where,
                    res.details[0].status, res.details[0].reason)
    return None


def _first(value: Any) -> str:
    return str(value[0]) if isinstance(value, list | tuple) and value else str(value)
