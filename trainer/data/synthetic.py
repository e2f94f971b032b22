"""A seeded synthetic VQA set: coloured shapes drawn with PIL, asked about by count, colour or shape.

Answers are one short word or a small integer, so `vqa_accuracy` (exact/partial match),
`math_equiv` (counts) and `regex_format` (whatever tags the prompt asks for) can all score them.
The same seed always draws the same images and asks the same questions.

One more task, drawn only when `answer_types` asks for `copy`: the question spells out the count
of shapes (1 to 3) as the answer to copy. It is for the CPU demo, whose random-weight model cannot
see the image: an answer that the question text determines is one GRPO can teach it in minutes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from PIL import Image, ImageDraw

from trainer.data.config import DataConfig

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 200, 20),
}
SHAPES = ("circle", "square", "triangle")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")
IMAGE_TASKS = ("count", "color", "shape")
ANSWER_TYPES = {"count": "integer", "color": "text", "shape": "text", "copy": "copy"}
COPY_MAX = 3  # the copy task's answers are 1..COPY_MAX
# Repeated so the digit is a large share of the prompt: in a random model's near-uniform
# attention one mention of it barely moves the last position's hidden state.
COPY_REPEATS = 16
DEFAULT_SIZE = (56, 56)
DEFAULT_COUNT = 64
_GRID = 3  # shapes sit in distinct cells of a 3×3 grid, so they never overlap and stay countable


def draw_shapes(
    shape: str, color: str, count: int, size: tuple[int, int], rng: random.Random
) -> Image.Image:
    """`count` copies of one shape in one colour, in random distinct grid cells, on white."""
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    cell_w, cell_h = size[0] / _GRID, size[1] / _GRID
    for cell in rng.sample(range(_GRID * _GRID), count):
        x0, y0 = (cell % _GRID) * cell_w, (cell // _GRID) * cell_h
        box = (x0 + cell_w * 0.15, y0 + cell_h * 0.15, x0 + cell_w * 0.85, y0 + cell_h * 0.85)
        fill = COLORS[color]
        if shape == "circle":
            draw.ellipse(box, fill=fill)
        elif shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([((box[0] + box[2]) / 2, box[1]), (box[0], box[3]), (box[2], box[3])],
                         fill=fill)
    return image


def copy_question(count: int) -> str:
    """The copy task's question: the answer, repeated, to be copied."""
    return "Copy the digit: " + " ".join([str(count)] * COPY_REPEATS) + "."


def _ask(task: str, shape: str, color: str, count: int) -> tuple[str, str, list[str]]:
    """(question, answer, accepted answers) for one drawn image."""
    plural = f"{shape}s" if count != 1 else shape
    if task == "copy":
        return copy_question(count), str(count), [str(count)]
    if task == "count":
        return (f"How many {shape}s are in the image? Answer with a number.", str(count),
                [str(count), NUMBER_WORDS[count]])
    if task == "color":
        return (f"What color is the {plural}? Answer with one word.", color, [color])
    return ("What shape is drawn in the image? Answer with one word.", shape, [shape])


def _tasks(cfg: DataConfig) -> tuple[str, ...]:
    """The image tasks; with `copy` in `cfg.answer_types`, the tasks whose answer type it lists."""
    if cfg.answer_types is None or "copy" not in cfg.answer_types:
        return IMAGE_TASKS  # the rows of unlisted types are filtered out and counted later
    return tuple(t for t in (*IMAGE_TASKS, "copy") if ANSWER_TYPES[t] in cfg.answer_types)


def synthetic_records(cfg: DataConfig) -> Iterator[dict[str, Any]]:
    """`cfg.limit` (default 64) rows, cycling through the count, colour and shape questions
    (or the tasks `cfg.answer_types` names)."""
    rng = random.Random(cfg.seed)
    size = cfg.image_size or DEFAULT_SIZE
    total = cfg.limit or DEFAULT_COUNT
    tasks = _tasks(cfg)
    for index in range(total):
        task = tasks[index % len(tasks)]
        shape, color = rng.choice(SHAPES), rng.choice(sorted(COLORS))
        count = rng.randint(1, COPY_MAX if task == "copy" else 4)
        question, answer, answers = _ask(task, shape, color, count)
        yield {
            "question": question,
            "image": draw_shapes(shape, color, count, size, rng),
            "solution": answer,
            "answers": answers,
            "meta": {"task": task, "answer_type": ANSWER_TYPES[task]},
        }
