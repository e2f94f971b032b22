"""Path-VQA and MathVista loaders, run through `load_dataset` on local copies in the hub's layout."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import pytest
from PIL import Image

from trainer.data import DataConfig, build_dataset


def _png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_split(root: Path, split: str, columns: dict, features: datasets.Features) -> Path:
    # The hub's parquet layout, so load_dataset(<dir>) infers the split from the file name.
    target = root / "data" / f"{split}-00000-of-00001.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(target))
    return root


@pytest.fixture
def path_vqa_dir(tmp_path: Path) -> Path:
    features = datasets.Features(
        {"image": datasets.Image(), "question": datasets.Value("string"),
         "answer": datasets.Value("string")}
    )
    images = [{"bytes": _png((200, 0, 0)), "path": None},
              {"bytes": _png((0, 200, 0)), "path": None},
              {"bytes": b"not an image at all", "path": None},  # corrupt
              {"bytes": _png((0, 0, 200)), "path": None},
              None,  # no image
              {"bytes": _png((9, 9, 9)), "path": None}]
    columns = {
        "image": images,
        "question": ["is this tissue inflamed?", "what organ is shown?", "is this normal?",
                     "  ", "where is this?", "is there necrosis?"],
        "answer": ["yes", "liver", "no", "yes", "lung", "no"],
    }
    return _write_split(tmp_path / "path-vqa", "train", columns, features)


def _mathvista_features() -> datasets.Features:
    string = datasets.Value("string")
    return datasets.Features({
        "pid": string, "question": string, "image": string, "decoded_image": datasets.Image(),
        "choices": datasets.List(string), "unit": string, "precision": datasets.Value("float64"),
        "answer": string, "question_type": string, "answer_type": string, "query": string,
    })


@pytest.fixture
def mathvista_dir(tmp_path: Path) -> Path:
    image = {"bytes": _png((120, 120, 120), (64, 48)), "path": None}
    columns = {
        "pid": ["1", "2", "3", "4", "5"],
        "question": ["What is x?", "Which angle is larger?", "How long is AB?",
                     "Which is red?", "Area?"],
        "image": [f"images/{i}.jpg" for i in range(1, 6)],
        "decoded_image": [image, image, image, image, None],
        "choices": [None, ["30°", "60°"], None, None, None],  # pid 4: multi_choice, no choices
        "unit": [None, None, "cm", None, None],
        "precision": [None, None, 1.0, None, None],
        "answer": ["3", "60°", "2.5", "A", "12"],
        "question_type": ["free_form", "multi_choice", "free_form", "multi_choice", "free_form"],
        "answer_type": ["integer", "text", "float", "text", "integer"],
        "query": ["Hint: ... What is x?"] * 5,
    }
    return _write_split(tmp_path / "mathvista", "testmini", columns, _mathvista_features())


class TestPathVqa:
    def test_rows_carry_prompt_image_and_solution(self, path_vqa_dir: Path) -> None:
        cfg = DataConfig(source="path_vqa", path=path_vqa_dir, image_size=128,
                         system_prompt="You are a pathologist.", format_instruction="Answer briefly.")
        ds, summary = build_dataset(cfg)
        assert ds.num_rows == 3
        row = ds[0]
        assert row["solution"] == "yes"
        assert row["question"] == "is this tissue inflamed?"
        assert row["image"].size == (128, 128) and row["image"].mode == "RGB"
        system, user = row["prompt"]
        assert system == {"role": "system",
                          "content": [{"type": "text", "text": "You are a pathologist."}]}
        assert user["content"][0]["type"] == "image"
        assert user["content"][1]["text"] == "is this tissue inflamed?\nAnswer briefly."
        assert summary.kept == 3

    def test_malformed_rows_are_counted_by_reason(self, path_vqa_dir: Path) -> None:
        _, summary = build_dataset(DataConfig(source="path_vqa", path=path_vqa_dir))
        assert summary.skipped == {"image_unreadable": 1, "missing_question": 1, "missing_image": 1}
        assert "skipped 3 malformed" in str(summary)

    @pytest.mark.parametrize("streaming", [False, True])
    def test_limit_keeps_the_first_usable_rows(self, path_vqa_dir: Path, streaming: bool) -> None:
        cfg = DataConfig(source="path_vqa", path=path_vqa_dir, streaming=streaming, limit=2)
        ds, summary = build_dataset(cfg)
        assert ds["solution"] == ["yes", "liver"]
        assert summary.kept == 2 and not summary.skipped  # stopped before the bad rows

    def test_a_single_parquet_file_is_accepted_as_path(self, path_vqa_dir: Path) -> None:
        parquet = next((path_vqa_dir / "data").glob("*.parquet"))
        ds, _ = build_dataset(DataConfig(source="path_vqa", path=parquet))
        assert ds["solution"] == ["yes", "liver", "no"]

    def test_defaults_name_the_hub_dataset(self) -> None:
        cfg = DataConfig(source="path_vqa")
        assert (cfg.hub_id, cfg.split) == ("flaviagiammarino/path-vqa", "train")


class TestMathVista:
    def test_rows_carry_choices_and_meta(self, mathvista_dir: Path) -> None:
        ds, summary = build_dataset(DataConfig(source="mathvista", path=mathvista_dir))
        assert summary.split == "testmini"
        assert ds["solution"] == ["3", "60°", "2.5"]
        assert ds["choices"] == [None, ["30°", "60°"], None]
        assert ds[2]["meta"] == {"pid": "3", "question_type": "free_form", "answer_type": "float",
                                 "precision": 1.0, "unit": "cm"}
        assert ds[0]["image"].size == (64, 48)

    def test_choices_are_shown_in_the_prompt_not_in_the_question(self, mathvista_dir: Path) -> None:
        ds, _ = build_dataset(DataConfig(source="mathvista", path=mathvista_dir))
        row = ds[1]
        assert row["question"] == "Which angle is larger?"
        assert row["prompt"][-1]["content"][1]["text"] == (
            "Which angle is larger?\nChoices:\n(A) 30°\n(B) 60°"
        )

    def test_malformed_rows_are_counted(self, mathvista_dir: Path) -> None:
        _, summary = build_dataset(DataConfig(source="mathvista", path=mathvista_dir))
        assert summary.skipped == {"missing_choices": 1, "missing_image": 1}

    def test_answer_types_filter_is_counted_apart(self, mathvista_dir: Path) -> None:
        cfg = DataConfig(source="mathvista", path=mathvista_dir, answer_types=["integer", "float"],
                         image_size=(32, 32))
        ds, summary = build_dataset(cfg)
        assert ds["solution"] == ["3", "2.5"]
        assert summary.filtered == {"answer_type=text": 1}
        assert ds[0]["image"].size == (32, 32)

    def test_no_usable_row_is_an_error_with_the_summary(self, mathvista_dir: Path) -> None:
        cfg = DataConfig(source="mathvista", path=mathvista_dir, answer_types=["list"])
        with pytest.raises(ValueError, match=r"no usable rows.*filtered 3"):
            build_dataset(cfg)
