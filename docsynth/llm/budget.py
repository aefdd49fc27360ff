"""Token-aware truncation: fit a sample's page texts into the model's context, leaving room
for the prompt around them and for the answer."""

from __future__ import annotations

import logging
import math
from typing import Protocol

from docsynth.core.inert import tokenizer_specials
from docsynth.core.torchlibs import set_aside_broken

log = logging.getLogger(__name__)
MARK = " [...]"  # appended to a page whose text was cut


class Tokens(Protocol):
    specials: list[str]  # strings the tokenizer reads as control tokens (docsynth.core.inert)

    def count(self, text: str) -> int: ...

    def truncate(self, text: str, n: int) -> str:
        """The longest prefix of text that is at most n tokens."""
        ...


class HFTokens:
    """Exact counts with the model's own (Hugging Face) tokenizer."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        self.specials = tokenizer_specials(tokenizer)

    def count(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False))

    def truncate(self, text: str, n: int) -> str:
        ids = self.tok.encode(text, add_special_tokens=False)
        return text if len(ids) <= n else self.tok.decode(ids[:n])


class CharTokens:
    """An estimate for when no tokenizer is at hand (a remote server's model): a fixed number
    of characters per token, on the safe side for most tokenizers on prose."""

    def __init__(self, chars_per_token: float) -> None:
        self.cpt = chars_per_token
        self.specials: list[str] = []  # not known: docsynth.core.inert's common shapes still apply

    def count(self, text: str) -> int:
        return math.ceil(len(text) / self.cpt)

    def truncate(self, text: str, n: int) -> str:
        return text[:int(n * self.cpt)]


def local_tokens(model: str, chars_per_token: float) -> Tokens:
    """The model's tokenizer if it is on this machine (a local folder or the HF cache), else
    the character estimate."""
    set_aside_broken()
    try:
        from transformers import AutoTokenizer

        return HFTokens(AutoTokenizer.from_pretrained(model, local_files_only=True))
    except Exception as e:  # not installed, not cached, not a tokenizer
        log.warning("no local tokenizer for %s (%s); estimating %g characters per token for the context budget",
                    model, type(e).__name__, chars_per_token)
        return CharTokens(chars_per_token)


def fit(texts: list[str], budget: int, tokens: Tokens) -> tuple[list[str], bool]:
    """Texts cut so their tokens sum to at most budget, sharing it fairly: short pages keep all
    of theirs and long pages split the rest equally. Returns (texts, whether any was cut)."""
    counts = [tokens.count(t) for t in texts]
    if sum(counts) <= budget:
        return texts, False
    mark = tokens.count(MARK)
    share, left, order = {}, max(budget, 0), sorted(range(len(texts)), key=lambda i: counts[i])
    for rank, i in enumerate(order):
        fair = left // (len(order) - rank)
        share[i] = min(counts[i], fair)
        left -= share[i]
    out = []
    for i, t in enumerate(texts):
        if share[i] >= counts[i]:
            out.append(t)
        else:
            out.append(tokens.truncate(t, max(share[i] - mark, 0)).rstrip() + MARK if share[i] > mark else "")
    return out, True
