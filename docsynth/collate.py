"""A collate for vision-language training on docsynth rows in the messages view
(`MixtureDataset(output="messages")`, `as_datasets()`, or a `docsynth export`): the model's
processor makes the batch, labels cover the assistant turns only, and the pixels cross from the
DataLoader's workers to the training process as uint8 (4x fewer bytes than float32: the data
path, not the loader, kept the GPU waiting, issue 22), normalised on the device by `to_device`.

    collate = vlm_collate(processor)
    loader = ds.loader(batch_size=8, num_workers=8, collate_fn=collate, pin_memory=True)
    for batch in loader:
        out = model(**collate.to_device(batch, "cuda"))

Works with processors that expand an image placeholder in the chat text (Idefics3 / SmolVLM,
LLaVA-style, Qwen2-VL-style), whose image processors take do_rescale / do_normalize.
"""

from __future__ import annotations

import io
from typing import Any

from docsynth.core.errors import MissingDependencyError

try:
    import torch
except ImportError as e:  # the training job's dependency
    raise MissingDependencyError("docsynth.collate needs torch: pip install 'docsynth[loader]'") from e

IGNORE = -100  # the label of a token the loss leaves out (torch's CrossEntropyLoss default)


def _pil(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    data = image.get("bytes") if isinstance(image, dict) else image
    return Image.open(io.BytesIO(data)).convert("RGB")


def _clean(messages: list[dict]) -> list[dict]:
    """Messages as chat templates take them: image parts without a null text."""
    return [{"role": m["role"], "content": [{k: v for k, v in p.items() if v is not None} for p in m["content"]]}
            for m in messages]


class VLMCollate:
    def __init__(self, processor, max_length: int | None = None, compact: bool = True) -> None:
        self.processor, self.max_length, self.compact = processor, max_length, compact
        self.tokenizer = processor.tokenizer
        ip = processor.image_processor
        self.mean = torch.tensor(ip.image_mean, dtype=torch.float32)
        self.std = torch.tensor(ip.image_std, dtype=torch.float32)
        self.rescale = float(getattr(ip, "rescale_factor", 1 / 255))
        # Qwen2-VL-style processors flatten each patch: (patches, C * T * P * P), channel first.
        t, p = getattr(ip, "temporal_patch_size", None), getattr(ip, "patch_size", None)
        self.patch = (len(ip.image_mean), t, p, p) if t and isinstance(p, int) else None

    def _text(self, messages: list[dict], **kw) -> str:
        return self.processor.apply_chat_template(messages, tokenize=False, **kw)

    def _length(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        messages = [_clean(r["messages"]) for r in rows]
        texts = [self._text(m) for m in messages]
        images = [[_pil(im) for im in r["images"]] for r in rows]
        kwargs: dict = {"do_rescale": False, "do_normalize": False} if self.compact else {}
        if self.max_length:
            kwargs.update(truncation=True, max_length=self.max_length)
        batch = self.processor(text=texts, images=images if any(images) else None, return_tensors="pt", padding=True,
                               **kwargs)
        if self.compact and "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].round().clamp(0, 255).to(torch.uint8)
        batch["labels"] = self._labels(batch, messages, texts)
        return dict(batch)

    def _labels(self, batch, messages: list[list[dict]], texts: list[str]) -> torch.Tensor:
        """IGNORE everywhere but the assistant turns: each turn's tokens, found as the tokens its
        chat prefix adds (the answer and the template's end of turn), offset by what the
        processor's image expansion added before them (the images are in the first user turn)."""
        ids = batch["input_ids"]
        labels = torch.full_like(ids, IGNORE)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        left = self.tokenizer.padding_side == "left"
        for row, (msgs, text) in enumerate(zip(messages, texts)):
            n = int(lengths[row])
            offset = n - self._length(text)  # the image tokens the processor's expansion added
            start = ids.shape[1] - n if left else 0
            for i, m in enumerate(msgs):
                if m["role"] != "assistant":
                    continue
                lo = self._length(self._text(msgs[:i], add_generation_prompt=True)) + offset
                hi = min(self._length(self._text(msgs[:i + 1])) + offset, n)
                labels[row, start + lo:start + hi] = ids[row, start + lo:start + hi]
        return labels

    def to_device(self, batch: dict[str, Any], device: str | torch.device, dtype: torch.dtype = torch.float32) -> dict:
        """The batch on the device, uint8 pixels rescaled and normalised there (what the processor
        would have done on the CPU), in dtype."""
        out = {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        px = out.get("pixel_values")
        if px is not None and px.dtype == torch.uint8:
            out["pixel_values"] = self.normalise(px, device).to(dtype)
        return out

    def normalise(self, px: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
        """uint8 pixels as the processor would have given them: rescaled, then normalised per channel."""
        mean, std = self.mean.to(device), self.std.to(device)
        if self.patch is not None and px.dim() == 2:  # flattened patches
            flat = px.float().view(px.shape[0], *self.patch) * self.rescale
            return ((flat - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)).view(px.shape)
        shape = [1] * (px.dim() - 3) + [-1, 1, 1]  # channels third from the end: (..., C, H, W)
        return (px.float() * self.rescale - mean.view(shape)) / std.view(shape)


def vlm_collate(processor, max_length: int | None = None, compact: bool = True) -> VLMCollate:
    """The collate for this processor; see the module docstring. compact=False gives the
    processor's own float pixels (normalised on the CPU, 4x the bytes)."""
    return VLMCollate(processor, max_length, compact)
