"""The synthetic shapes dataset: deterministic by seed, and its answers are what the image shows."""

from __future__ import annotations

import random

import numpy as np

from trainer.data import DataConfig, build_dataset
from trainer.data.synthetic import COLORS, draw_shapes


def _load(seed: int, limit: int = 9):
    ds, _ = build_dataset(DataConfig(source="synthetic", seed=seed, limit=limit))
    return ds


def test_same_seed_same_rows() -> None:
    first, second = _load(3), _load(3)
    assert first["question"] == second["question"]
    assert first["solution"] == second["solution"]
    for a, b in zip(first["image"], second["image"], strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_other_seed_other_rows() -> None:
    first, other = _load(3), _load(4)
    images_equal = [np.array_equal(np.asarray(a), np.asarray(b))
                    for a, b in zip(first["image"], other["image"], strict=True)]
    assert not all(images_equal)


def test_questions_cycle_through_count_colour_shape() -> None:
    ds = _load(0, limit=6)
    assert [m["task"] for m in ds["meta"]] == ["count", "color", "shape"] * 2
    count_row = ds[0]
    assert count_row["solution"].isdigit() and 1 <= int(count_row["solution"]) <= 4
    assert count_row["meta"]["answer_type"] == "integer"
    assert ds[1]["solution"] in COLORS
    assert ds[2]["solution"] in ("circle", "square", "triangle")


def test_count_answer_matches_the_drawn_blobs() -> None:
    image = draw_shapes("square", "red", 3, (60, 60), random.Random(0))
    pixels = np.asarray(image)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80)
    # Shapes sit in distinct grid cells: count the cells holding red pixels.
    cells = {(y // 20, x // 20) for y, x in zip(*np.nonzero(red), strict=True)}
    assert len(cells) == 3


def test_colour_answer_matches_the_pixels() -> None:
    ds = _load(1, limit=6)
    for row in ds:
        if row["meta"]["task"] != "color":
            continue
        pixels = np.asarray(row["image"]).reshape(-1, 3)
        drawn = pixels[(pixels != 255).any(axis=1)]
        nearest = min(COLORS, key=lambda c: np.abs(drawn.mean(axis=0) - COLORS[c]).sum())
        assert nearest == row["solution"]


def test_image_size_and_default_count() -> None:
    ds, summary = build_dataset(DataConfig(source="synthetic", image_size=32))
    assert ds.num_rows == 64 == summary.kept
    assert ds[0]["image"].size == (32, 32)


def test_rows_fill_trls_image_placeholder_with_their_own_image() -> None:
    from trl.data_utils import is_conversational, prepare_multimodal_messages

    cfg = DataConfig(source="synthetic", limit=2, system_prompt="Be brief.",
                     format_instruction="Answer in <answer></answer>.")
    ds, _ = build_dataset(cfg)
    row = ds[0]
    assert is_conversational({"prompt": row["prompt"]})
    filled = prepare_multimodal_messages(row["prompt"], images=[row["image"]])
    blocks = [block for message in filled for block in message["content"]]
    images = [block["image"] for block in blocks if block["type"] == "image"]
    assert len(images) == 1 and images[0] is row["image"]
    assert filled[0]["content"][0]["text"] == "Be brief."
    assert blocks[-1]["text"].endswith("\nAnswer in <answer></answer>.")


def test_the_copy_task_is_drawn_only_when_asked_and_its_question_spells_out_the_answer() -> None:
    ds, summary = build_dataset(DataConfig(source="synthetic", limit=30, answer_types=["copy"]))
    assert ds.num_rows == 30 and summary.total_skipped == 0
    for row in ds:
        digits = {word.strip(".") for word in row["question"].split(":")[1].split()}
        assert digits == {row["solution"]}  # the question names one digit, and it is the answer
        assert row["meta"] == {"task": "copy", "answer_type": "copy"}
    assert set(ds["solution"]) == {"1", "2", "3"}
    # Without `copy` in answer_types the image tasks are drawn exactly as before.
    plain = build_dataset(DataConfig(source="synthetic", limit=6, answer_types=["integer"]))[0]
    assert [m["task"] for m in plain["meta"]] == ["count", "count"]
    assert plain["question"] == _load(0, limit=6)["question"][::3]
