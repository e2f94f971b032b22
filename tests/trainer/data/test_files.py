"""ViVQA-X (JSON + COCO folder) and generic JSONL loaders on small files in the real schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from trainer.data import DataConfig, build_dataset


def _image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (50, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _vivqa_record(qid: str, image_id: int, split: str = "val", **overrides) -> dict:
    record = {
        "question": "Trời có mưa không?",
        "image_id": str(image_id),
        "image_name": f"COCO_{split}2014_{image_id:012d}.jpg",
        "explanation": ["mọi người đang sử dụng ô", "có nước rơi từ bầu trời"],
        "answer": "có",
        "question_id": qid,
        "question_type": "is it",
        "answer_type": "yes/no",
    }
    record.update(overrides)
    return record


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    _image(root / "val2014" / "COCO_val2014_000000000001.jpg", (10, 120, 200))
    _image(root / "train2014" / "COCO_train2014_000000000002.jpg", (200, 120, 10))
    (root / "val2014" / "COCO_val2014_000000000003.jpg").write_bytes(b"truncated")
    return root


@pytest.fixture
def vivqa_file(tmp_path: Path) -> Path:
    records = [
        _vivqa_record("1001", 1),
        _vivqa_record("2001", 2, split="train", answer="không", answer_type="yes/no"),
        _vivqa_record("1002", 1, explanation=[]),  # no explanation
        _vivqa_record("1003", 3),  # unreadable image
        _vivqa_record("1004", 4),  # image file absent
        _vivqa_record("1005", 1, answer=""),
        "not a record",
    ]
    path = tmp_path / "ViVQA-X_val.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


class TestVivqaX:
    def test_rows_carry_answers_explanations_and_meta(self, vivqa_file: Path,
                                                       coco_root: Path) -> None:
        ds, _ = build_dataset(DataConfig(source="vivqa_x", path=vivqa_file, image_root=coco_root))
        assert ds["solution"] == ["có", "không"]
        row = ds[0]
        assert row["answers"] == ["có"]
        assert row["explanation"] == ["mọi người đang sử dụng ô", "có nước rơi từ bầu trời"]
        assert row["meta"] == {"question_id": "1001", "image_id": "1", "question_type": "is it",
                               "answer_type": "yes/no", "language": "vi"}
        assert row["image"].mode == "RGB" and row["image"].size == (50, 40)

    def test_images_are_stored_as_paths_and_decoded_on_read(self, vivqa_file: Path,
                                                           coco_root: Path) -> None:
        ds, _ = build_dataset(DataConfig(source="vivqa_x", path=vivqa_file, image_root=coco_root))
        stored = ds.data.column("image")[1].as_py()
        assert stored["bytes"] is None
        assert stored["path"].endswith("train2014/COCO_train2014_000000000002.jpg")

    def test_image_size_resizes_lazily_decoded_images(self, vivqa_file: Path,
                                                     coco_root: Path) -> None:
        cfg = DataConfig(source="vivqa_x", path=vivqa_file, image_root=coco_root,
                         image_size=(24, 16))
        ds, _ = build_dataset(cfg)
        assert [image.size for image in ds["image"]] == [(24, 16), (24, 16)]
        assert ds[1]["image"].size == (24, 16)
        # The Trainer's DataLoader fetches batches of indices: the resize applies there too.
        batch = ds.__getitems__([1, 0])
        assert [row["image"].size for row in batch] == [(24, 16), (24, 16)]
        assert batch[0]["solution"] == "không"

    def test_malformed_rows_are_counted_by_reason(self, vivqa_file: Path, coco_root: Path) -> None:
        _, summary = build_dataset(
            DataConfig(source="vivqa_x", path=vivqa_file, image_root=coco_root)
        )
        assert summary.kept == 2
        assert summary.skipped == {"missing_explanation": 1, "image_unreadable": 1,
                                   "image_missing": 1, "missing_answer": 1, "not_an_object": 1}

    def test_vqa_x_dict_with_annotator_answers(self, tmp_path: Path, coco_root: Path) -> None:
        record = _vivqa_record("1001", 1, answers=[{"answer": "có"}, {"answer": "có"},
                                                  {"answer": "không"}])
        del record["answer"]
        path = tmp_path / "vqax.json"
        path.write_text(json.dumps({"1001": record}), encoding="utf-8")
        ds, _ = build_dataset(DataConfig(source="vivqa_x", path=path, image_root=coco_root))
        assert ds[0]["solution"] == "có"
        assert ds[0]["answers"] == ["có", "có", "không"]

    def test_config_requires_the_image_folder(self, vivqa_file: Path) -> None:
        with pytest.raises(ValueError, match="image_root"):
            DataConfig(source="vivqa_x", path=vivqa_file)


@pytest.fixture
def jsonl_file(tmp_path: Path) -> Path:
    _image(tmp_path / "images" / "a.png", (255, 0, 0))
    _image(tmp_path / "images" / "b.png", (0, 0, 255))
    lines = [
        {"id": 1, "image": "images/a.png", "conversations": [
            {"from": "human", "value": "<image>What number of red things are there?"},
            {"from": "gpt", "value": "<answer>1</answer>"}]},
        {"image": "images/b.png", "question": "What color is it?", "answer": "blue",
         "answers": ["blue", "navy"], "explanation": "the whole image is blue",
         "meta": {"answer_type": "other"}},
        {"image": ["images/a.png"], "conversations": [
            {"from": "human", "value": "<image>Is it red?"}, {"from": "gpt", "value": "yes"}]},
        {"id": 4, "image": "images/a.png", "conversations": [
            {"from": "human", "value": "<image>No answer follows"}]},
        {"image": "images/missing.png", "question": "q", "answer": "a"},
        {"image": ["images/a.png", "images/b.png"], "question": "q", "answer": "a"},
        {"image": "images/a.png", "question": "q", "answer": "a", "choices": "A"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n{broken json\n\n[1, 2]\n"
    path = tmp_path / "train.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


class TestJsonl:
    def test_conversations_and_plain_lines_become_rows(self, jsonl_file: Path) -> None:
        ds, _ = build_dataset(DataConfig(source="jsonl", path=jsonl_file, format_instruction="F"))
        assert ds["question"] == ["What number of red things are there?", "What color is it?",
                                  "Is it red?", "q"]
        assert ds["solution"] == ["1", "blue", "yes", "a"]
        assert ds[0]["prompt"][0]["content"][1]["text"] == (
            "What number of red things are there?\nF"
        )
        assert ds[1]["answers"] == ["blue", "navy"]
        assert ds[1]["explanation"] == ["the whole image is blue"]
        assert ds[0]["answers"] is None
        assert ds[0]["image"].getpixel((0, 0)) == (255, 0, 0)
        assert ds[3]["choices"] == ["A"]  # a lone string is read as a one-item list

    def test_malformed_lines_are_counted_by_reason(self, jsonl_file: Path) -> None:
        _, summary = build_dataset(DataConfig(source="jsonl", path=jsonl_file))
        assert summary.skipped == {"missing_answer": 1, "image_missing": 1, "not_one_image": 1,
                                   "bad_json": 1, "not_an_object": 1}

    def test_image_root_overrides_the_file_folder(self, jsonl_file: Path, tmp_path: Path) -> None:
        elsewhere = tmp_path / "elsewhere"
        _image(elsewhere / "images" / "a.png", (0, 255, 0))
        cfg = DataConfig(source="jsonl", path=jsonl_file, image_root=elsewhere, limit=1)
        ds, _ = build_dataset(cfg)
        assert ds[0]["image"].getpixel((0, 0)) == (0, 255, 0)

    def test_a_missing_file_names_the_setting(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match=r"data\.path"):
            build_dataset(DataConfig(source="jsonl", path=tmp_path / "nope.jsonl"))
