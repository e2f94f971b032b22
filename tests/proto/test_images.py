"""What the client sends for an image: its file's bytes, a path under a shared root, or its pixels."""

import base64
import hashlib
import io
import os

import numpy as np
import pytest
from PIL import Image

from integrations.trl_items import build_items
from proto.images import collect_images, image_to_data


def photo(seed: int = 0, size=(96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([xx * 255 // size[0], yy * 255 // size[1], (xx + yy) % 256], axis=-1)
    return Image.fromarray(np.clip(base + rng.integers(-4, 5, base.shape), 0, 255).astype(np.uint8))


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def sent(data) -> bytes:
    assert data.path is None
    return base64.b64decode(data.b64)


def pixels(raw: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.int16)


@pytest.fixture
def jpeg_file(tmp_path):
    path = tmp_path / "root" / "coco" / "a.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(encoded(photo(), "JPEG", quality=90))
    return path


class TestOriginalBytes:
    def test_an_image_opened_from_a_file_is_sent_as_the_files_bytes(self, jpeg_file):
        for loaded in (False, True):
            img = Image.open(jpeg_file)
            if loaded:
                img.load()  # datasets loads every image it decodes; the file name stays
            key, data = image_to_data(img)
            assert sent(data) == jpeg_file.read_bytes()
            assert key == hashlib.sha256(jpeg_file.read_bytes()).hexdigest()[:32]

    def test_an_image_still_reading_from_memory_is_sent_as_those_bytes(self):
        raw = encoded(photo(1), "PNG")
        assert sent(image_to_data(Image.open(io.BytesIO(raw)))[1]) == raw

    def test_datasets_undecoded_cells_are_sent_without_decoding(self, jpeg_file):
        raw = jpeg_file.read_bytes()
        assert sent(image_to_data({"bytes": raw, "path": None})[1]) == raw
        assert sent(image_to_data({"bytes": None, "path": str(jpeg_file)})[1]) == raw
        gif = encoded(photo(2), "GIF")  # a format the services refuse: its pixels go as PNG
        again = sent(image_to_data({"bytes": gif, "path": None})[1])
        assert Image.open(io.BytesIO(again)).format == "PNG"
        assert np.array_equal(pixels(again), pixels(gif))

    def test_a_loaded_jpeg_without_its_bytes_keeps_its_own_tables(self):
        raw = encoded(photo(3), "JPEG", quality=85)
        img = Image.open(io.BytesIO(raw))
        img.load()  # as datasets decodes an embedded image: the bytes are gone afterwards
        got = sent(image_to_data(img)[1])
        assert Image.open(io.BytesIO(got)).format == "JPEG"
        assert len(got) < 1.2 * len(raw)  # a PNG of it is several times larger
        diff = np.abs(pixels(got) - np.asarray(img, dtype=np.int16))
        assert diff.mean() < 0.5

    def test_changed_images_are_sent_as_their_exact_pixels(self, jpeg_file):
        derived = Image.open(jpeg_file).resize((48, 32))
        got = sent(image_to_data(derived)[1])
        assert Image.open(io.BytesIO(got)).format == "PNG"
        assert np.array_equal(pixels(got), np.asarray(derived))
        converted = Image.open(jpeg_file).convert("L")
        assert Image.open(io.BytesIO(sent(image_to_data(converted)[1]))).mode == "L"
        shrunk = Image.open(jpeg_file)
        shrunk.thumbnail((40, 40))  # in place: still a JPEG image object, but not the file's pixels
        got = sent(image_to_data(shrunk)[1])
        assert got != jpeg_file.read_bytes() and Image.open(io.BytesIO(got)).size == shrunk.size

    def test_a_pending_exif_rotation_sends_the_pixels(self, tmp_path):
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90: PIL does not apply it, a caller may have in place
        path = tmp_path / "rotated.jpg"
        path.write_bytes(encoded(photo(4), "JPEG", exif=exif))
        assert sent(image_to_data(Image.open(path))[1]) != path.read_bytes()


class TestSharedRoot:
    def test_files_under_the_root_go_as_relative_paths(self, jpeg_file):
        root = jpeg_file.parents[1]
        key, data = image_to_data(Image.open(jpeg_file), root)
        assert (data.path, data.b64) == ("coco/a.jpg", None)
        assert image_to_data({"bytes": None, "path": str(jpeg_file)}, root)[1].path == "coco/a.jpg"
        assert image_to_data(Image.open(jpeg_file), jpeg_file.parent)[1].path == "a.jpg"
        assert key == image_to_data(Image.open(jpeg_file), root)[0]

    def test_files_outside_the_root_or_changed_images_go_as_bytes(self, jpeg_file, tmp_path):
        root = tmp_path / "elsewhere"
        root.mkdir()
        os.symlink(jpeg_file, root / "link.jpg")  # a link out of the root: the service refuses it
        assert image_to_data(Image.open(jpeg_file), root)[1].path is None
        assert image_to_data(Image.open(root / "link.jpg"), root)[1].path is None
        resized = Image.open(jpeg_file).resize((10, 10))
        assert image_to_data(resized, jpeg_file.parents[1])[1].path is None

    def test_a_grpo_request_carries_each_image_once_small(self, tmp_path):
        files = []
        for i in range(16):
            path = tmp_path / f"{i}.jpg"
            path.write_bytes(encoded(photo(i, (320, 240)), "JPEG", quality=90))
            files.append(path)
        # TRL's columns for 16 prompts x 8 completions, each group repeating its row's image.
        images = [Image.open(f) for f in files for _ in range(8)]
        items, table = build_items(["p"] * 128, ["c"] * 128, {"image": images})
        assert len(table) == 16 and len({it.image_id for it in items}) == 16
        assert sum(len(sent(d)) for d in table.values()) == sum(f.stat().st_size for f in files)
        _, by_path = build_items(["p"] * 128, ["c"] * 128, {"image": images}, image_root=tmp_path)
        assert sorted(d.path for d in by_path.values()) == sorted(f.name for f in files)


def test_identity_and_content_still_deduplicate(jpeg_file):
    a, b = Image.open(jpeg_file), Image.open(jpeg_file)
    ids, table = collect_images([a, a, b, None])
    assert ids[0] == ids[1] == ids[2] and ids[3] is None and len(table) == 1
