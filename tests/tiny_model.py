"""A tiny Llama-architecture model with random weights, built offline in seconds, for tests
and benchmarks of the real vLLM engine. Its text is noise: check structure, not content."""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# Role markers are special tokens, as in real chat models: a page holding "<|end|>" must not
# become one (docsynth.core.inert).
CHAT_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
_CORPUS = (
    "The invoice number is INV-2024-00871 and the total due is 901.32 pounds. "
    "What is the due date? The due date is 13 November 2024. "
    '[{"question": "What is the total?", "answer": "901.32"}] '
    "Riverside Water Authority supplies drinking water to 412,000 residents in nine municipalities. "
    "Quarterly sales by region: Nordics 1,204; Benelux 980; Iberia 755; Central Europe 1,530. "
)


def tiny_tokenizer(extra: list[str] = (), vocab_size: int = 512, chat_template: str = CHAT_TEMPLATE):
    """A byte-level BPE tokenizer trained on the corpus above, with <s> </s> <pad>, these extra
    special tokens (a VLM's image tokens) and the chat tokens, and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>", *extra, *CHAT_TOKENS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   additional_special_tokens=[*extra, *CHAT_TOKENS])
    fast.chat_template = chat_template
    return fast


def build_tiny_model(path: Path, vocab_size: int = 512, layers: int = 2, hidden: int = 128) -> Path:
    """Write a loadable model folder (config, random weights, BPE tokenizer with a chat template)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    if (path / "config.json").exists() and (path / "tokenizer.json").exists():
        return path
    fast = tiny_tokenizer(vocab_size=vocab_size)
    fast.save_pretrained(path)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=hidden // 32, num_key_value_heads=hidden // 32,
                         head_dim=32, max_position_embeddings=4096, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(path)
    (path / "generation_config.json").write_text(json.dumps({"bos_token_id": fast.bos_token_id,
                                                             "eos_token_id": fast.eos_token_id}))
    return path
