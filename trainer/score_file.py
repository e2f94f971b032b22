"""`rewardstack score`: score a JSONL file of completions through one or more reward services."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from proto.client import RewardClient
from proto.models import ImageData, ScoreItem

ITEM_FIELDS = set(ScoreItem.model_fields)


class InputError(ValueError):
    pass


@dataclass
class ServiceTally:
    rewards: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def read_items(path: Path) -> tuple[list[dict], list[ScoreItem], dict[str, ImageData]]:
    """Every line, its ScoreItem, and the images it names, checked before anything is sent.

    A line may carry `image`: a path (relative to the file) that is read and sent inline.
    Other fields (ids, notes) are kept and written back untouched.
    """
    rows, items, images = [], [], {}
    ids_by_path: dict[Path, str] = {}  # the K lines of a group name one file: read it once
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            fields = {k: v for k, v in row.items() if k in ITEM_FIELDS}
            if isinstance(row.get("image"), str):
                fields["image_id"] = _local_image(path.parent / row["image"], ids_by_path, images)
            items.append(ScoreItem.model_validate(fields))
        except (json.JSONDecodeError, ValidationError, OSError, AttributeError) as exc:
            raise InputError(f"{path}:{n}: {_short(exc)}") from None
        rows.append(row)
    if not items:
        raise InputError(f"{path} has no items")
    return rows, items, images


def _local_image(path: Path, ids_by_path: dict[Path, str], images: dict[str, ImageData]) -> str:
    """The id of the image file at `path`, keyed by content so that equal names never collide."""
    resolved = path.resolve()
    if resolved not in ids_by_path:
        raw = resolved.read_bytes()
        image_id = hashlib.sha256(raw).hexdigest()[:32]
        images.setdefault(image_id, ImageData(b64=base64.b64encode(raw).decode()))
        ids_by_path[resolved] = image_id
    return ids_by_path[resolved]


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
    return str(exc)


async def score_all(rows, items, images, rewards: dict[str, str], params: dict[str, dict],
                    out: Path, chunk: int, token: str | None, deadline_s: float,
                    console: Console) -> dict[str, ServiceTally]:
    """Score every item with every service; write each scored slice as soon as it is complete."""
    tallies = {name: ServiceTally() for name in rewards}
    clients = {name: RewardClient(url, token=token, deadline_s=deadline_s) for name, url in rewards.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with out.open("w", encoding="utf-8") as sink, Progress(console=console, transient=True) as bar:
            task = bar.add_task("scoring", total=len(items))
            for start in range(0, len(items), chunk):
                part = items[start:start + chunk]
                results = await asyncio.gather(
                    *(_timed(clients[n], part, images, params.get(n)) for n in rewards)
                )
                _write_slice(sink, rows[start:start + chunk], dict(zip(rewards, results, strict=True)))
                for n, (res, seconds) in zip(rewards, results, strict=True):
                    tallies[n].rewards.extend(res.rewards)
                    tallies[n].seconds.append(seconds)
                sink.flush()
                bar.advance(task, len(part))
    finally:
        for client in clients.values():
            await client.aclose()
    return tallies


def _write_slice(sink, rows: list[dict], results: dict) -> None:
    for offset, row in enumerate(rows):
        scored = {**row, "rewards": {n: res.rewards[offset] for n, (res, _) in results.items()}}
        sink.write(json.dumps(scored, ensure_ascii=False) + "\n")


async def _timed(client: RewardClient, items, images, params):
    started = time.perf_counter()
    res = await client.score(items, images=images, params=params)
    return res, time.perf_counter() - started


def summary_table(tallies: dict[str, ServiceTally]) -> Table:
    table = Table(title="rewards")
    for col in ("service", "items", "mean", "nulls", "latency p50 (ms)"):
        table.add_column(col, justify="right" if col != "service" else "left")
    for name, t in tallies.items():
        scored = [r for r in t.rewards if r is not None]
        mean = f"{statistics.fmean(scored):.3f}" if scored else "-"
        latency = f"{statistics.median(t.seconds) * 1000:.1f}" if t.seconds else "-"
        table.add_row(name, str(len(t.rewards)), mean, str(len(t.rewards) - len(scored)), latency)
    return table


def item_table(rows: list[dict], path: Path, names: list[str], width: int = 60) -> Table:
    """Per-item view of a scored file: the completion (cut) and each service's reward."""
    table = Table(title=str(path), show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("completion", overflow="ellipsis", max_width=width, no_wrap=True)
    for name in names:
        table.add_column(name, justify="right")
    for i, row in enumerate(rows, 1):
        text = " ".join(str(row.get("completion", "")).split())
        cells = [_fmt(row["rewards"].get(n)) for n in names]
        table.add_row(str(i), text, *cells)
    return table


def _fmt(value) -> str:
    return "null" if value is None else f"{value:.3f}"
