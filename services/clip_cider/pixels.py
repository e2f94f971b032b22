"""Decoded images to CLIP's input batch as open_clip's eval preprocess makes it, in fewer, cheaper steps.

open_clip's preprocess, one image at a time: resize the whole image so its shorter side is the
model's input side, crop the centre square, convert to a float tensor, normalise. Here the same
geometry and filter run once per image on the crop only (PIL's resize with a source box, in the
decoding thread), and the tensor steps run once per batch; or, with the model on a GPU, the
resize, crop and normalise all run there as tensor ops on the decoded pixels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

_PIL_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
_TV_MODES = {T.InterpolationMode.BICUBIC: "bicubic", T.InterpolationMode.BILINEAR: "bilinear"}


@dataclass(frozen=True)
class ResizeCrop:
    """open_clip's eval transform when it is Resize(shorter side) + CenterCrop(square) + Normalize.

    Build it with `of(preprocess)`; any other transform gives None, and the caller runs open_clip's
    own preprocess instead, so a model with another geometry is never scored with a wrong one.
    """

    side: int
    interpolation: str  # "bicubic" | "bilinear"
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, preprocess: object) -> ResizeCrop | None:
        steps = list(getattr(preprocess, "transforms", ()))
        kinds = [type(s).__name__ for s in steps]
        if kinds != ["Resize", "CenterCrop", "MaybeConvertMode", "MaybeToTensor", "Normalize"]:
            return None
        resize, crop, _, _, norm = steps
        size = resize.size if isinstance(resize.size, int) else list(resize.size)
        side = size if isinstance(size, int) else size[0] if len(size) == 1 else None
        if (side is None or resize.max_size is not None or resize.interpolation not in _TV_MODES
                or list(crop.size) != [side, side]):
            return None
        return cls(side, _TV_MODES[resize.interpolation], tuple(map(float, norm.mean)),
                   tuple(map(float, norm.std)))

    def geometry(self, w: int, h: int) -> tuple[int, int, int, int]:
        """(resized width, resized height, crop left, crop top), as torchvision computes them."""
        if w <= h:
            rw, rh = self.side, int(self.side * h / w)
        else:
            rw, rh = int(self.side * w / h), self.side
        return rw, rh, round((rw - self.side) / 2.0), round((rh - self.side) / 2.0)

    def crop_resized(self, img: Image.Image) -> np.ndarray:
        """The side x side x 3 uint8 crop: PIL resamples only the part that survives the crop."""
        w, h = img.size
        rw, rh, left, top = self.geometry(w, h)
        if (rw, rh) == (w, h):  # torchvision leaves an image already at size unresized
            out = img.crop((left, top, left + self.side, top + self.side))
        else:
            sx, sy = w / rw, h / rh
            box = (left * sx, top * sy, (left + self.side) * sx, (top + self.side) * sy)
            out = img.resize((self.side, self.side), _PIL_FILTERS[self.interpolation], box=box)
        return np.asarray(out)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x side x side pixel values 0..255 -> (x / 255 - mean) / std, in place when float."""
        x = x.float()
        scale = torch.tensor([1 / (255 * s) for s in self.std], device=x.device).view(1, 3, 1, 1)
        shift = torch.tensor([m / s for m, s in zip(self.mean, self.std, strict=True)],
                             device=x.device).view(1, 3, 1, 1)
        return x.mul_(scale).sub_(shift)

    def batch(self, crops: Sequence[np.ndarray], device: str) -> torch.Tensor:
        """Crops from `crop_resized`, normalised as one batch on `device`."""
        stacked = torch.from_numpy(np.stack(crops)).to(device, non_blocking=True)
        return self.normalise(stacked.permute(0, 3, 1, 2))

    def on_device(self, decoded: Sequence[np.ndarray], device: str) -> torch.Tensor:
        """Whole decoded H x W x 3 uint8 images -> the normalised batch, every step on `device`.

        Images of one size are resized together. The result is rounded and clamped to 0..255
        before normalising, as PIL's uint8 output is, so both paths see the same pixels.
        """
        out = torch.empty((len(decoded), 3, self.side, self.side), device=device)
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, arr in enumerate(decoded):
            by_size[arr.shape].append(i)
        for (h, w, _), idx in by_size.items():
            x = torch.from_numpy(np.stack([decoded[i] for i in idx])).to(device, non_blocking=True)
            x = x.permute(0, 3, 1, 2).float()
            rw, rh, left, top = self.geometry(w, h)
            if (rw, rh) != (w, h):
                x = F.interpolate(x, size=(rh, rw), mode=self.interpolation, align_corners=False,
                                  antialias=True).round_().clamp_(0, 255)
            crop = x[:, :, top : top + self.side, left : left + self.side]
            out[idx] = self.normalise(crop)
        return out
