"""Decoded images to CLIP's input batch as open_clip's eval preprocess makes it, in fewer, cheaper steps.

open_clip's preprocess, one image at a time: PIL resizes the whole image so its shorter side is
the model's input side, crops the centre square, converts to a float tensor, normalises. Here the
same geometry and filter run as torch's antialiased uint8 kernels in the decoding threads (within
one level of PIL's, several times faster) and normalising runs once per batch; or, with the model
on a GPU, the resize, crop and normalise all run there as tensor ops on the decoded pixels.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

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

    def resized_crop(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W pixels -> N x 3 x side x side: Resize(side) then CenterCrop(side).

        uint8 input stays uint8: torch's antialiased uint8 kernels are within one level of PIL's,
        which open_clip's preprocess uses. Float input is rounded and clamped to 0..255 after the
        resize, as PIL's uint8 output is.
        """
        h, w = x.shape[-2:]
        rw, rh, left, top = self.geometry(w, h)
        if (rw, rh) != (w, h):  # torchvision leaves an image already at size as it is
            x = F.interpolate(x, size=(rh, rw), mode=self.interpolation, align_corners=False, antialias=True)
            if x.is_floating_point():
                x = x.round_().clamp_(0, 255)
        return x[:, :, top : top + self.side, left : left + self.side]

    def crop_on_cpu(self, img: Image.Image) -> torch.Tensor:
        """One decoded RGB image -> its 3 x side x side crop; for the decoding threads."""
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).unsqueeze(0)
        if not _uint8_resize(self.interpolation):
            x = x.float()
        return self.resized_crop(x)[0].contiguous()

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x side x side pixel values 0..255 -> (x / 255 - mean) / std, as float."""
        x = x.float()
        scale = torch.tensor([1 / (255 * s) for s in self.std], device=x.device).view(1, 3, 1, 1)
        shift = torch.tensor([m / s for m, s in zip(self.mean, self.std, strict=True)],
                             device=x.device).view(1, 3, 1, 1)
        return x.mul_(scale).sub_(shift)

    def batch(self, crops: Sequence[torch.Tensor], device: str) -> torch.Tensor:
        """Crops from `crop_on_cpu`, normalised as one batch on `device`."""
        return self.normalise(torch.stack(list(crops)).to(device, non_blocking=True))

    def on_device(self, decoded: Sequence[np.ndarray], device: str) -> torch.Tensor:
        """Whole decoded H x W x 3 uint8 images -> the normalised batch, every step on `device`.

        Only the decoded bytes cross to the device; images of one size are resized together, in
        float (the device kernels for uint8 are not everywhere).
        """
        out = torch.empty((len(decoded), 3, self.side, self.side), device=device)
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, arr in enumerate(decoded):
            by_size[arr.shape].append(i)
        for idx in by_size.values():
            x = torch.from_numpy(np.stack([decoded[i] for i in idx])).to(device, non_blocking=True)
            out[idx] = self.normalise(self.resized_crop(x.permute(0, 3, 1, 2).float()))
        return out


@functools.cache
def _uint8_resize(mode: str) -> bool:
    """Does this torch resize uint8 images on the CPU in `mode`, antialiased? (Older ones do not.)"""
    try:
        F.interpolate(torch.zeros((1, 3, 8, 8), dtype=torch.uint8), size=(4, 4), mode=mode,
                      align_corners=False, antialias=True)
    except RuntimeError:
        return False
    return True
