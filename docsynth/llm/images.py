"""Page images for a vision-language model: fitted to the recipe's pixel budget, sent as chat
image parts (data URIs: what vLLM's chat API and any OpenAI-compatible server take), and counted
in the context budget with the model's own processor where it is on this machine.

Idefics3 / SmolVLM processors scale every image to a fixed longest edge (2,048 px for
SmolVLM-256M: 17 tiles of 64 tokens, whatever the page), so for them the budget also sets that
edge (`processor_kwargs`): without it a small page image costs as many tokens as a large one.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from docsynth.core.torchlibs import set_aside_broken
log = logging.getLogger(__name__)
JPEG_QUALITY = 90  # ingest's default: a resized page keeps the quality it was stored at
PAGE_ASPECT = 2 ** 0.5  # A4 / letter portrait, about: the page shape a budget is sized for


@dataclass(slots=True, frozen=True)
class PageImage:
    data: bytes
    mime: str
    width: int
    height: int

    def part(self) -> dict:
        """The chat content part (OpenAI's image_url with a data URI)."""
        return {"type": "image_url", "image_url": {"url": f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"}}


def fit_image(data: bytes, max_pixels: int) -> PageImage:
    """The image within max_pixels (width x height), aspect kept: as stored when it fits, else
    resized and encoded as JPEG. Never larger than the budget. ValueError if it cannot be read."""
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
    except Exception as e:  # PIL raises many kinds on a broken image
        raise ValueError(f"unreadable page image: {type(e).__name__}: {e}") from None
    fmt = (img.format or "").lower()
    if w * h <= max_pixels and fmt in ("jpeg", "png", "webp"):
        return PageImage(data, f"image/{fmt}", w, h)
    scale = min(1.0, math.sqrt(max_pixels / (w * h)))
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    try:
        img.draft("RGB", (nw, nh))  # a JPEG decodes at the nearest larger 1/2^k scale: 2-4x faster
        out = img.convert("RGB").resize((nw, nh), Image.Resampling.LANCZOS)
    except Exception as e:
        raise ValueError(f"unreadable page image: {type(e).__name__}: {e}") from None
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=JPEG_QUALITY)
    return PageImage(buf.getvalue(), "image/jpeg", nw, nh)


def budget_size(max_pixels: int) -> tuple[int, int]:
    """(width, height) of a portrait page at the pixel budget: the check's worst case."""
    w = int(math.sqrt(max_pixels / PAGE_ASPECT))
    return w, int(w * PAGE_ASPECT)


def blank_page(max_pixels: int) -> PageImage:
    """A white portrait page at the budget (where an image must stand but none is at hand)."""
    buf = io.BytesIO()
    w, h = budget_size(max_pixels)
    Image.new("RGB", (w, h), "white").save(buf, "JPEG", quality=JPEG_QUALITY)
    return PageImage(buf.getvalue(), "image/jpeg", w, h)


class ImageTokens(Protocol):
    def count(self, width: int, height: int) -> int: ...


class PixelEstimate:
    """Tokens estimated from pixels, where the model's processor is not at hand."""

    def __init__(self, pixels_per_token: float) -> None:
        self.ppt = pixels_per_token

    def count(self, width: int, height: int) -> int:
        return math.ceil(width * height / self.ppt) + 8  # plus the markers around an image


class ProcessorTokens:
    """Exact counts: the model's processor run on a blank image of the size, once per size."""

    def __init__(self, processor, kwargs: dict) -> None:
        self.processor, self.kwargs = processor, kwargs
        with_image = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
        self.text = processor.apply_chat_template(with_image, tokenize=False)
        plain = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                                              tokenize=False)
        self.base = len(processor.tokenizer(plain, add_special_tokens=False)["input_ids"])
        self._sizes: dict[tuple[int, int], int] = {}

    def count(self, width: int, height: int) -> int:
        if (width, height) not in self._sizes:
            out = self.processor(text=self.text, images=[Image.new("RGB", (width, height), "white")],
                                 add_special_tokens=False, **self.kwargs)
            self._sizes[(width, height)] = len(out["input_ids"][0]) - self.base
        return self._sizes[(width, height)]


def processor_kwargs(processor, max_pixels: int) -> dict:
    """What the engine's processor is given so the pixel budget bounds its tokens: for a processor
    that scales every image to a fixed longest edge in tiles (Idefics3, SmolVLM), the edge of a
    portrait page at the budget, in whole tiles; {} for processors that keep the image's size
    (Qwen2-VL's reads the pixels it gets)."""
    ip = getattr(processor, "image_processor", None)
    tile = (getattr(ip, "max_image_size", None) or {}).get("longest_edge")
    size = getattr(ip, "size", None) or {}
    if not tile or "longest_edge" not in size:
        return {}
    edge = max(tile, round(budget_size(max_pixels)[1] / tile) * tile)
    return {"size": {"longest_edge": edge}}


def image_tokens(model: str, max_pixels: int, pixels_per_token: float) -> tuple[ImageTokens, dict]:
    """The counter for this model's images, and the processor settings that go with it (for the
    engine's mm_processor_kwargs): exact where the processor is on this machine, else estimated."""
    set_aside_broken()
    try:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(model, local_files_only=True)
        kwargs = processor_kwargs(processor, max_pixels)
        counter = ProcessorTokens(processor, kwargs)
        counter.count(*budget_size(max_pixels))  # fails here, once, if the processor cannot take images
        return counter, kwargs
    except Exception as e:  # not installed, not cached, a processor without images or a chat template
        log.warning("no local image processor for %s (%s: %s); estimating image tokens as pixels / %g",
                    model, type(e).__name__, str(e)[:200], pixels_per_token)
        return PixelEstimate(pixels_per_token), {}
