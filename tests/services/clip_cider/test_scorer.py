"""ClipCiderScorer without HTTP: golden CIDEr-D in any batching, CLIPScore against open_clip, weights."""

import random

import open_clip
import pytest
import torch
from pycocoevalcap.cider.cider import Cider
from pydantic import ValidationError

from proto.models import ImageData, ItemStatus, ScoreItem
from services.clip_cider.clip import encode_text_trimmed
from services.clip_cider.scorer import ClipCiderParams, ClipCiderScorer
from services.clip_cider.settings import ClipCiderSettings
from services.common.scoring import Batch, NotReadyError, ParamsError
from tests.services.clip_cider.support import (
    GOLDEN,
    GOLDEN_PATH,
    TINY_NAME,
    b64,
    encode,
    image,
    loaded,
    settings_for,
)


@pytest.fixture(scope="module")
def scorer(tiny_config):
    with loaded(settings_for(tiny_config)) as s:
        yield s


def score(scorer, items, images=None, **params):
    batch = Batch(items=items, images={k: ImageData(**v) for k, v in (images or {}).items()},
                  params=ClipCiderParams(**params))
    return scorer.score(batch)


def golden_item(row):
    return ScoreItem(completion=f"<answer>yes</answer><explain>{row['candidate']}</explain>",
                     reference=row["references"])


class TestGoldenCider:
    def test_all_at_once(self, scorer):
        results = score(scorer, [golden_item(r) for r in GOLDEN])
        assert [r.parts["cider"] for r in results] == pytest.approx([r["cider_d"] for r in GOLDEN], abs=1e-6)
        # No image: the weights renormalise over CIDEr alone.
        assert [r.reward for r in results] == pytest.approx(
            [min(r["cider_d"], 10.0) / 10.0 for r in GOLDEN], abs=1e-9
        )
        assert all("clip" not in r.parts for r in results)

    def test_one_by_one(self, scorer):
        for row in GOLDEN:
            [res] = score(scorer, [golden_item(row)])
            assert res.parts["cider"] == pytest.approx(row["cider_d"], abs=1e-6)

    @pytest.mark.parametrize("seed", range(3))
    def test_shuffled_random_batches(self, scorer, seed):
        rng = random.Random(seed)
        order = list(range(len(GOLDEN)))
        rng.shuffle(order)
        while order:
            take = rng.randint(1, 17)
            chunk, order = order[:take], order[take:]
            results = score(scorer, [golden_item(GOLDEN[i]) for i in chunk])
            got = [r.parts["cider"] for r in results]
            assert got == pytest.approx([GOLDEN[i]["cider_d"] for i in chunk], abs=1e-6)

    def test_request_corpus_over_the_whole_file_reproduces_it(self, scorer):
        results = score(scorer, [golden_item(r) for r in GOLDEN], corpus="request")
        assert [r.parts["cider"] for r in results] == pytest.approx([r["cider_d"] for r in GOLDEN], abs=1e-6)

    def test_request_corpus_on_a_subset_is_pycocoevalcap_on_that_subset(self, scorer):
        rows = GOLDEN[10:25]
        results = score(scorer, [golden_item(r) for r in rows], corpus="request")
        gts = {i: r["references"] for i, r in enumerate(rows)}
        res = {i: [r["candidate"]] for i, r in enumerate(rows)}
        expected = Cider().compute_score(gts, res)[1]
        assert [r.parts["cider"] for r in results] == pytest.approx(list(expected), abs=1e-9)
        # ... which is not what the fixed corpus gives: the point of the fixed corpus.
        fixed = [r.parts["cider"] for r in score(scorer, [golden_item(r) for r in rows])]
        assert fixed != pytest.approx(list(expected), abs=1e-6)


@pytest.fixture(scope="module")
def checkpoint(tiny_config, tmp_path_factory):
    """Weights saved by the test itself, loaded by the service as a local checkpoint path."""
    open_clip.add_model_config(tiny_config)
    torch.manual_seed(1234)
    model, _, preprocess = open_clip.create_model_and_transforms(
        TINY_NAME, pretrained=None, pretrained_text=False, pretrained_image=False)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path, model.eval(), preprocess, open_clip.get_tokenizer(TINY_NAME)


def _direct_clip(model, preprocess, tokenizer, img, text):
    with torch.inference_mode():
        e_img = model.encode_image(preprocess(img)[None], normalize=True)[0]
        e_txt = model.encode_text(tokenizer(["A photo depicts " + text]), normalize=True)[0]
    return 2.5 * max(float(e_img @ e_txt), 0.0)


TEXTS = ("a dog runs on the beach", "red", "", "Hai con mèo đang ngủ trên ghế sofa.",
         " ".join(["a very long explanation that goes on"] * 20))


class TestClipScore:

    def test_equals_the_formula_with_the_same_model(self, tiny_config, checkpoint):
        path, model, preprocess, tokenizer = checkpoint
        imgs = [image(i) for i in range(4)]
        pairs = [(i % 4, t) for i, t in enumerate(TEXTS * 2)]
        items = [ScoreItem(completion=f"<explain>{t}</explain>", image_id=f"im{i}") for i, t in pairs]
        with loaded(settings_for(tiny_config, clip_pretrained=str(path))) as s:
            results = score(s, items, {f"im{i}": b64(encode(im)) for i, im in enumerate(imgs)})
        # The PNG round trip is lossless; the service resizes with torch's uint8 kernels, within a
        # rounding step of the PIL resize open_clip's preprocess does (tests/.../test_fast_pixels).
        expected = [_direct_clip(model, preprocess, tokenizer, imgs[i], t) for i, t in pairs]
        assert [r.parts["clip"] for r in results] == pytest.approx(expected, abs=1e-3)
        assert [r.reward for r in results] == pytest.approx([r.parts["clip"] / 2.5 for r in results], abs=1e-9)
        # Both sides of max(cos, 0) are exercised.
        assert any(e == 0.0 for e in expected) and any(e > 0.0 for e in expected)

    def test_trimmed_text_encoding_equals_encode_text(self, checkpoint):
        _, model, _, tokenizer = checkpoint
        tokens = tokenizer(["A photo depicts " + t for t in TEXTS])
        with torch.inference_mode():
            expected = model.encode_text(tokens, normalize=True)
            assert torch.allclose(encode_text_trimmed(model, tokens), expected, atol=1e-6)
            short = tokenizer(["A photo depicts a dog", "red"])
            assert torch.allclose(encode_text_trimmed(model, short), model.encode_text(short, normalize=True),
                                  atol=1e-6)

    def test_long_text_is_truncated_to_the_context_not_rejected(self, scorer):
        assert scorer.embedder.tokenizer(["word " * 200]).shape == (1, 24)
        head = " ".join(["a dog runs"] * 30)
        items = [ScoreItem(completion=head + tail, image_id="a") for tail in (" cat", " bus stop")]
        results = score(scorer, items, {"a": b64(encode(image(0)))})
        assert [r.status for r in results] == [ItemStatus.ok] * 2
        assert results[0].parts["clip"] == results[1].parts["clip"]

    def test_random_init_is_reproducible_from_the_seed(self, tiny_config, scorer):
        items = [ScoreItem(completion=t, image_id="a") for t in TEXTS]
        images = {"a": b64(encode(image(5)))}
        base = [r.parts["clip"] for r in score(scorer, items, images)]
        with loaded(settings_for(tiny_config)) as same:
            assert [r.parts["clip"] for r in score(same, items, images)] == pytest.approx(base, abs=1e-6)
        with loaded(settings_for(tiny_config, clip_seed=1)) as other:
            assert [r.parts["clip"] for r in score(other, items, images)] != pytest.approx(base, abs=1e-6)


class TestReward:
    def test_default_weights_mix_both_parts(self, scorer):
        row = GOLDEN[4]
        [r] = score(scorer, [golden_item(row).model_copy(update={"image_id": "a"})],
                    {"a": b64(encode(image(1)))})
        clip, cider = r.parts["clip"], r.parts["cider"]
        assert cider == pytest.approx(row["cider_d"], abs=1e-6)
        assert r.reward == pytest.approx(0.5 * clip / 2.5 + 0.5 * min(cider, 10) / 10)
        assert 0.0 <= r.reward <= 1.0

    def test_params_override_weights_and_cap(self, scorer):
        row = GOLDEN[4]
        item = golden_item(row).model_copy(update={"image_id": "a"})
        images = {"a": b64(encode(image(1)))}
        [r] = score(scorer, [item], images, w_clip=0.0, w_cider=2.0, cider_cap=2.0)
        assert r.reward == pytest.approx(min(row["cider_d"], 2.0) / 2.0)
        [r] = score(scorer, [item], images, w_clip=1.0, w_cider=0.0)
        assert r.reward == pytest.approx(r.parts["clip"] / 2.5)

    def test_both_weights_zero_is_a_params_error(self, scorer):
        with pytest.raises(ParamsError, match="both 0"):
            score(scorer, [golden_item(GOLDEN[0])], w_clip=0, w_cider=0)

    def test_item_with_nothing_to_score_is_null(self, scorer):
        [r] = score(scorer, [ScoreItem(completion="<explain>a dog</explain>")])
        assert (r.reward, r.status) == (None, ItemStatus.unscorable)
        assert "no image and no references" in r.reason

    def test_only_part_has_zero_weight_is_null(self, scorer):
        [r] = score(scorer, [golden_item(GOLDEN[0])], w_clip=1.0, w_cider=0.0)
        assert (r.reward, r.status) == (None, ItemStatus.unscorable)
        assert r.parts["cider"] == pytest.approx(GOLDEN[0]["cider_d"])

    def test_whole_completion_without_the_tag(self, scorer):
        row = GOLDEN[4]
        [tagged] = score(scorer, [golden_item(row)])
        [plain] = score(scorer, [ScoreItem(completion=row["candidate"], reference=row["references"])])
        [off] = score(scorer, [golden_item(row)], explain_tag=None)
        assert plain.parts["cider"] == tagged.parts["cider"]
        assert off.parts["cider"] != tagged.parts["cider"]


@pytest.fixture(scope="module")
def bare(tiny_config):
    with loaded(settings_for(tiny_config, corpus_path=None)) as s:
        yield s


class TestNoCorpus:
    def test_cider_is_absent_and_info_says_why(self, bare):
        assert "CLIP_CIDER_CORPUS_PATH" in bare.config()["cider"]["off"]
        assert any("CIDEr-D is off" in w for w in bare.warnings())
        item = golden_item(GOLDEN[0])
        [no_image, with_image] = score(bare, [item, item.model_copy(update={"image_id": "a"})],
                                       {"a": b64(encode(image(2)))})
        assert no_image.reward is None and "CLIP_CIDER_CORPUS_PATH" in no_image.reason
        assert set(with_image.parts) == {"clip"}
        assert with_image.reward == pytest.approx(with_image.parts["clip"] / 2.5)

    def test_request_corpus_still_works(self, bare):
        results = score(bare, [golden_item(r) for r in GOLDEN], corpus="request")
        assert [r.parts["cider"] for r in results] == pytest.approx([r["cider_d"] for r in GOLDEN], abs=1e-6)


class TestLifecycleAndConfig:
    def test_not_ready_until_loaded(self, tiny_config):
        s = ClipCiderScorer(settings_for(tiny_config))
        assert s.not_ready_reason()
        with pytest.raises(NotReadyError):
            score(s, [golden_item(GOLDEN[0])])

    def test_config_and_warnings_name_the_model_corpus_and_random_weights(self, scorer):
        cfg = scorer.config()
        assert cfg["clip"]["model"] == TINY_NAME and cfg["clip"]["random_init"] is True
        assert cfg["cider"]["corpus"]["documents"] == len(GOLDEN)
        assert len(cfg["cider"]["corpus"]["sha256"]) == 64
        assert any("random-initialised CLIP" in w for w in scorer.warnings())
        assert scorer.not_ready_reason() is None

    def test_params_refuse_unknown_fields_and_bad_tags(self):
        with pytest.raises(ValidationError):
            ClipCiderParams(wclip=1)
        with pytest.raises(ValidationError, match="tag name"):
            ClipCiderParams(explain_tag="a>b")
        with pytest.raises(ValidationError):
            ClipCiderParams(corpus="batch")

    def test_settings_from_the_environment(self, monkeypatch, tmp_path):
        monkeypatch.setenv("CLIP_CIDER_CORPUS_PATH", str(GOLDEN_PATH))
        monkeypatch.setenv("CLIP_CIDER_CLIP_PRETRAINED", "")
        monkeypatch.setenv("CLIP_CIDER_IMAGE_ROOT", str(tmp_path))
        monkeypatch.setenv("CLIP_CIDER_MAX_IMAGE_PIXELS", "1000")
        monkeypatch.setenv("CLIP_CIDER_W_CIDER", "0.25")
        s = ClipCiderSettings()
        assert (s.corpus_path, s.clip_pretrained, s.image_root) == (GOLDEN_PATH, "", tmp_path)
        assert (s.max_image_pixels, s.w_cider) == (1000, 0.25)
        monkeypatch.setenv("CLIP_CIDER_W_CLIP", "0")
        monkeypatch.setenv("CLIP_CIDER_W_CIDER", "0")
        with pytest.raises(ValidationError, match="both 0"):
            ClipCiderSettings()



def test_a_groups_shared_references_are_vectorised_once(scorer):
    """The golden tests above check the values; this checks the K completions share the work."""
    row = GOLDEN[7]
    group = [ScoreItem(completion=f"<explain>{row['candidate']} {j}</explain>", reference=row["references"])
             for j in range(8)]
    cached = scorer._fixed_cider("default")._reference_vector
    before = cached.cache_info()
    score(scorer, group)
    after = cached.cache_info()
    assert after.misses - before.misses <= len(row["references"])
    assert after.hits - before.hits >= 7 * len(row["references"])


def test_a_groups_shared_references_are_tokenized_once(scorer, monkeypatch):
    import services.clip_cider.scorer as scorer_module

    seen = []
    real = scorer_module.tokenizer_for

    def counting(name):
        tokenize = real(name)
        return lambda text: seen.append(text) or tokenize(text)

    monkeypatch.setattr(scorer_module, "tokenizer_for", counting)
    row = GOLDEN[7]
    score(scorer, [ScoreItem(completion=f"<explain>x {j}</explain>", reference=row["references"]) for j in range(8)])
    assert sorted(t for t in seen if t in row["references"]) == sorted(row["references"])
