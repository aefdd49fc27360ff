"""A tiny random LLaVA (CLIP vision tower, Llama text model, `<image>` expanded into one token per
patch), built offline in seconds, for training-side tests of a second processor family."""

from __future__ import annotations

from pathlib import Path

from tests.tiny_model import tiny_tokenizer
from tests.tiny_vlm import CHAT_TEMPLATE

IMAGE_SIZE, PATCH = 32, 8  # (32/8)^2 = 16 image tokens a picture


def build_tiny_llava(path: Path) -> Path:
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava.processing_llava import LlavaProcessor

    path.mkdir(parents=True, exist_ok=True)
    if (path / "config.json").exists() and (path / "processor_config.json").exists():
        return path
    fast = tiny_tokenizer(["<image>"], 600, CHAT_TEMPLATE)
    images = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    LlavaProcessor(image_processor=images, tokenizer=fast, patch_size=PATCH, vision_feature_select_strategy="default", num_additional_image_tokens=1,
                   chat_template=CHAT_TEMPLATE).save_pretrained(path)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=IMAGE_SIZE, patch_size=PATCH, projection_dim=32)
    text = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                       bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    config = LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                         image_token_id=fast.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
                         vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(path)
    return path
