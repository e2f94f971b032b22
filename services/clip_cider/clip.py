"""CLIP embeddings through open_clip: one model on one device, an image-embedding LRU cache, micro-batches."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import open_clip
import torch
from PIL import Image

from services.clip_cider.batching import MicroBatcher
from services.clip_cider.pixels import ResizeCrop
from services.clip_cider.weights import LocalWeights

log = logging.getLogger(__name__)

# Hessel et al. (2021): the prompt prefix and the rescaling weight of CLIPScore.
PROMPT_PREFIX = "A photo depicts "
CLIP_WEIGHT = 2.5

_registered_configs: set[Path] = set()
_registry_lock = threading.Lock()

T = TypeVar("T")
R = TypeVar("R")


def clip_score(image_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
    """CLIPScore of L2-normalised embeddings: 2.5 * max(cos, 0), in [0, 2.5]."""
    return CLIP_WEIGHT * max(float(torch.dot(image_emb, text_emb)), 0.0)


def register_model_config(path: Path) -> None:
    """Make an architecture JSON (or a directory of them) known to open_clip under its file stem."""
    path = path.resolve()
    if not path.exists():
        raise ValueError(f"open_clip model config {path} does not exist; fix CLIP_CIDER_CLIP_MODEL_CONFIG")
    with _registry_lock:
        if path not in _registered_configs:
            open_clip.add_model_config(path)
            _registered_configs.add(path)


def encode_text_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """`model.encode_text(tokens, normalize=True)`, without the padding after the last end-of-text.

    In a CLIP text tower with a causal mask and end-of-text pooling, the pooled token never sees
    the positions after it, so cutting the padding (77 positions for typically 20 used) changes
    nothing but the cost. Other towers (bidirectional, custom text models) take the plain path.
    """
    trimmable = (type(model) is open_clip.model.CLIP and model.attn_mask is not None
                 and model.text_pool_type == "argmax")
    if not trimmable:
        return model.encode_text(tokens, normalize=True)
    # argmax pooling: the end-of-text id is the largest id in each row.
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    if model.text_projection is not None:
        x = model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) \
            else x @ model.text_projection
    return torch.nn.functional.normalize(x, dim=-1)


class EmbeddingCache:
    """A thread-safe LRU of embeddings keyed by content hash, counting hits and misses."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        with self._lock:
            for key in keys:
                emb = self._data.get(key)
                if emb is None:
                    self.misses += 1
                else:
                    self._data.move_to_end(key)
                    found[key] = emb
                    self.hits += 1
        return found

    def put_many(self, items: dict[str, torch.Tensor]) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            for key, emb in items.items():
                self._data[key] = emb
                self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class ClipSpec:
    """Which CLIP to build and where: the facts that decide its embeddings."""

    model: str
    pretrained: str = ""  # open_clip tag or local checkpoint path; "" = seeded random init
    device: str = "auto"
    seed: int = 0
    model_config: Path | None = None
    cache_dir: Path | None = None

    @property
    def random_init(self) -> bool:
        return not self.pretrained

    def activation(self) -> dict[str, bool]:
        """QuickGELU when the pretrained tag was trained with it (OpenAI's CLIPs, which CLIPScore
        is defined on): open_clip builds `ViT-B-32` with GELU and only warns that the tag wants
        QuickGELU, and says nothing when the same weights come from a cached file."""
        if self.random_init or Path(self.pretrained).suffix:
            return {}
        tag = open_clip.get_pretrained_cfg(self.model, self.pretrained) or {}
        return {"force_quick_gelu": True} if tag.get("quick_gelu") else {}

    def resolved_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


class ClipEmbedder:
    """Builds the model once (`load`), then embeds images and texts through one device thread.

    Images are prepared by a pool of `decode_threads` threads (PIL releases the GIL while it
    decodes and resamples); with the model off the CPU, resizing and normalising run there too.
    """

    def __init__(self, spec: ClipSpec, *, batch_rows: int = 64, batch_wait_s: float = 0.002,
                 cache_size: int = 4096, decode_threads: int = 0) -> None:
        self.spec = spec
        self.device = spec.resolved_device()
        self.cache = EmbeddingCache(cache_size)
        self._batcher = MicroBatcher(self._forward, batch_rows, batch_wait_s)
        # 0: as many as torch's intra-op threads (OMP_NUM_THREADS in a container), at most 8.
        self.decode_threads = decode_threads or min(torch.get_num_threads(), 8)
        self._pool: ThreadPoolExecutor | None = None
        self.model: torch.nn.Module | None = None
        self.preprocess = None
        self.resize_crop: ResizeCrop | None = None
        # Off the CPU, resize and normalise run on the device: the CPU threads only decode.
        self.preprocess_on_device = self.device != "cpu"
        self.tokenizer = None
        self.context_length = 0

    @property
    def ready(self) -> bool:
        return self.model is not None and self._batcher.running

    def load(self, weights: LocalWeights | None = None) -> None:
        """Build the model, start the device thread, warm up.

        `weights` (services.clip_cider.weights.locate or fetch) are on disk: no network is touched.
        Without them `spec.pretrained` goes to open_clip as it is (a tag may then download).
        """
        spec = self.spec
        if spec.model_config is not None:
            register_model_config(spec.model_config)
        if spec.random_init:
            log.warning("CLIP %s has RANDOM weights (seed %d): scores mean nothing; for tests only",
                        spec.model, spec.seed)
        # Seeding a forked RNG makes random weights reproducible without touching global state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.model, pretrained=weights.path if weights else spec.pretrained or None,
                device=self.device, pretrained_image=False, pretrained_text=False,
                cache_dir=str(spec.cache_dir) if spec.cache_dir else None,
                **(weights.preprocess if weights else {}), **spec.activation(),
            )
        model.eval()
        self.tokenizer = open_clip.get_tokenizer(spec.model)
        self.context_length = int(self.tokenizer.context_length or model.context_length)
        self.model, self.preprocess = model, preprocess
        self.resize_crop = ResizeCrop.of(preprocess)
        if self.resize_crop is None:
            log.info("CLIP %s's preprocess is not resize + centre crop: open_clip's own runs per image",
                     spec.model)
        self._pool = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="clip-decode")
        self._batcher.start()
        self._warm_up()

    def _warm_up(self) -> None:
        side = self.input_side
        self.embed_images([Image.new("RGB", (side * 4 // 3, side), (127, 127, 127))])
        self.embed_texts([PROMPT_PREFIX + "warm-up"])
        log.info("CLIP %s on %s warmed up (context %d tokens, %d decode threads)", self.spec.model,
                 self.device, self.context_length, self.decode_threads)

    def close(self) -> None:
        self._batcher.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.model = None

    @property
    def input_side(self) -> int:
        """The side of the square the model sees (224 for ViT-B-32)."""
        if self.resize_crop is not None:
            return self.resize_crop.side
        size = getattr(getattr(self.model, "visual", None), "image_size", 224)
        return int(max(size) if isinstance(size, tuple | list) else size)

    def parallel(self, fn: Callable[[T], R], args: Iterable[T]) -> list[R]:
        """`[fn(a) for a in args]` on the decode threads (inline for one argument).

        Each job runs in a copy of the caller's context, so the request's deadline
        (services.common.scoring) stops decoding on the pool's threads too."""
        args = list(args)
        if len(args) <= 1 or self._pool is None:
            return [fn(a) for a in args]
        contexts = [contextvars.copy_context() for _ in args]
        return list(self._pool.map(lambda ctx, a: ctx.run(fn, a), contexts, args))

    def prepare(self, img: Image.Image) -> Any:
        """One decoded RGB image -> what `pixel_batch` takes; thread-safe, runs on the decode threads."""
        if self.resize_crop is None:
            return self.preprocess(img)
        if self.preprocess_on_device:
            return np.asarray(img)
        return self.resize_crop.crop_on_cpu(img)

    def pixel_batch(self, prepared: Sequence[Any]) -> torch.Tensor:
        """The model's input batch, on the model's device, from `prepare`'s outputs."""
        if self.resize_crop is None:
            return torch.stack(list(prepared))
        if self.preprocess_on_device:
            return self.resize_crop.on_device(prepared, self.device)
        return self.resize_crop.batch(prepared, self.device)

    def embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of a `pixel_batch`, one row per image, on the CPU."""
        return self._batcher.submit("image", pixels)

    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """L2-normalised embeddings of RGB images, one row per image, on the CPU."""
        return self.embed_pixels(self.pixel_batch(self.parallel(self.prepare, images)))

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised embeddings, one row per text; the tokenizer truncates to the context length."""
        return self._batcher.submit("text", self.tokenizer(list(texts)))

    def _forward(self, kind: str, rows: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            rows = rows.to(self.device, non_blocking=True)
            if kind == "image":
                out = self.model.encode_image(rows, normalize=True)
            else:
                out = encode_text_trimmed(self.model, rows)
            return out.float().cpu()

    def stats(self) -> dict[str, int]:
        """Counters for tests and metrics: cache traffic, rows embedded, device forward passes."""
        return {
            "image_cache_hits": self.cache.hits,
            "image_cache_misses": self.cache.misses,
            "image_cache_size": len(self.cache),
            "images_embedded": self._batcher.rows["image"],
            "texts_embedded": self._batcher.rows["text"],
            "forward_passes": self._batcher.forward_passes,
        }
