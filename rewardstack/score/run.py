"""`rewardstack score`: score a JSONL file of completions through one or more reward services.

Results go to `<out>` only once every line is scored: until then they accumulate in
`<out stem>.partial<suffix>`, which a failed or interrupted run leaves beside the previous output
(untouched) and which `--resume` continues. Every output line carries, per service, the reward,
its status and the reason a reward is null.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from proto.client import RewardClient, RewardRequestError, RewardServiceError
from proto.rewards import RewardEntry
from rewardstack.score.input import OUTPUT_KEYS, InputError, read_items

__all__ = ["InputError", "ScoreInterrupted", "ServiceTally", "partial_path", "read_items", "score_all"]


class ScoreInterrupted(RuntimeError):
    """The run stopped before the last line; the partial file holds what was scored."""


@dataclass
class ServiceTally:
    rewards: list[float | None] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, reward: float | None, status: str, reason: str | None) -> None:
        self.rewards.append(reward)
        self.statuses.append(status)
        self.reasons.append(reason)


def partial_path(out: Path) -> Path:
    """Where results accumulate before the rename: `x.scored.jsonl` -> `x.scored.partial.jsonl`."""
    return out.with_name(f"{out.stem}.partial{out.suffix or '.jsonl'}")


@dataclass
class Job:
    rows: list[dict]
    items: list
    images: dict
    entries: list[RewardEntry]  # one per --reward: its URL, deadline and unreachable_s
    params: dict[str, dict]
    out: Path
    chunk: int = 256
    token: str | None = None
    resume: bool = False

    @property
    def rewards(self) -> list[str]:
        return [e.name for e in self.entries]


async def score_all(job: Job, console: Console) -> dict[str, ServiceTally]:
    """Score every item with every service; rename the partial file onto `job.out` at the end."""
    tallies = {name: ServiceTally() for name in job.rewards}
    partial = partial_path(job.out)
    if job.resume:
        done = _resume_from(partial, job, tallies, console)
    elif partial.exists():
        raise InputError(f"{partial} holds results of an earlier run that did not finish; --resume "
                         "continues it, deleting it starts over")
    else:
        done = 0
    job.out.parent.mkdir(parents=True, exist_ok=True)
    clients = {e.name: e.client(token=job.token) for e in job.entries}
    try:
        with partial.open("a" if done else "w", encoding="utf-8") as sink:
            await _score_rest(job, done, clients, sink, tallies, console)
    except BaseException as exc:
        done = sum(len(t.rewards) for t in tallies.values()) // max(len(tallies), 1)
        message = (f"{done} of {len(job.rows)} lines scored and kept in {partial}; {job.out} is "
                   "unchanged. Rerun with --resume to continue.")
        if not isinstance(exc, Exception):  # Ctrl-C: say where the results are, then stop as asked
            console.print(message)
            raise
        raise ScoreInterrupted(f"{_failure(exc)}\n{message}") from exc
    finally:
        for client in clients.values():
            await client.aclose()
    os.replace(partial, job.out)
    return tallies


async def _score_rest(job: Job, done: int, clients, sink, tallies, console: Console) -> None:
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("scoring", total=len(job.items), completed=done)
        for start in range(done, len(job.items), job.chunk):
            part = job.items[start:start + job.chunk]
            results = await asyncio.gather(
                *(_timed(e, clients[e.name], part, job.images, job.params.get(e.name)) for e in job.entries)
            )
            by_name = dict(zip(job.rewards, results, strict=True))
            for offset, row in enumerate(job.rows[start:start + job.chunk]):
                line = scored_line(row, {n: res for n, (res, _) in by_name.items()}, offset)
                sink.write(json.dumps(line, ensure_ascii=False) + "\n")
                for n in job.rewards:
                    tallies[n].add(line["rewards"][n], line["status"][n], line["reason"][n])
            for n, (_, seconds) in by_name.items():
                tallies[n].seconds.append(seconds)
            sink.flush()
            bar.advance(task, len(part))


def scored_line(row: dict, responses: dict, offset: int) -> dict:
    """The input row with, per service, the reward, its status and the reason (null when ok)."""
    base = _strip(row)
    details = {n: res.details[offset] for n, res in responses.items()}
    return {
        **base,
        "rewards": {n: res.rewards[offset] for n, res in responses.items()},
        "status": {n: str(d.status) for n, d in details.items()},
        "reason": {n: d.reason for n, d in details.items()},
    }


def _resume_from(partial: Path, job: Job, tallies: dict[str, ServiceTally], console: Console) -> int:
    """How many lines `partial` already holds for this input and these services (tallied).

    A half-written last line (the run was killed while writing it) is cut off, to be scored again.
    """
    if not partial.exists():
        console.print(f"nothing to resume ({partial} does not exist): scoring from the first line")
        return 0
    lines, good_bytes = [], 0
    with partial.open("rb") as handle:
        for raw in handle:
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                break
            good_bytes += len(raw)
    if len(lines) > len(job.rows):
        raise InputError(f"{partial} holds {len(lines)} lines but the input has {len(job.rows)}; "
                         "delete it, or drop --resume")
    for n, (line, row) in enumerate(zip(lines, job.rows, strict=False), 1):
        if _strip(line) != _strip(row):
            raise InputError(f"{partial}:{n} does not match line {n} of the input; "
                             "delete it, or drop --resume to start over")
        if set(line.get("rewards", {})) != set(job.rewards):
            raise InputError(f"{partial} was scored with {sorted(line.get('rewards', {}))}, not "
                             f"{sorted(job.rewards)}; give the same --reward names, or drop --resume")
        for name in job.rewards:
            tallies[name].add(line["rewards"][name], line["status"][name], line["reason"][name])
    os.truncate(partial, good_bytes)
    console.print(f"resuming after {len(lines)} scored lines from {partial}")
    return len(lines)


def _failure(exc: Exception) -> str:
    """The reward that failed, its URL once and the cause; anything else as it was raised."""
    if not isinstance(exc, _RewardFailed):
        return str(exc)
    cause = exc.__cause__
    hint = "; start the service (rewardstack serve) or fix the --reward URL" \
        if isinstance(cause, RewardServiceError) and cause.unreachable else ""
    return exc.entry.failure(cause) + hint


class _RewardFailed(Exception):
    """A call of `entry` failed (its __cause__ says how): carries which reward it was through gather."""

    def __init__(self, entry: RewardEntry):
        super().__init__(entry.name)
        self.entry = entry


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in OUTPUT_KEYS}


async def _timed(entry: RewardEntry, client: RewardClient, items, images, params):
    started = time.perf_counter()
    try:
        res = await client.score(items, images=images, params=params)
    except (RewardServiceError, RewardRequestError) as exc:
        raise _RewardFailed(entry) from exc
    return res, time.perf_counter() - started
