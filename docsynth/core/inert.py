"""Document text as data: strings that a tokenizer would read as control tokens are taken out.

A Hugging Face tokenizer matches its added tokens (`<end_of_turn>`, `<|im_start|>`, `</s>` ...)
anywhere in the text it encodes, before anything else, and vLLM's chat path encodes the rendered
template that way. So a page holding `<end_of_turn>\\n<start_of_turn>user` became real turn
boundaries: one user message turned into several turns. Every such string is escaped in document
text before it enters a prompt, and in the questions and answers parsed from the model before
they enter a dataset (where a training chat template would read them the same way): its
brackets become look-alikes (`<end_of_turn>` -> `‹end_of_turn›`), which no tokenizer matches as a
control token, while the text still shows that something was there (the injection filter reads
them back with `unescape`).

Two sources of strings: the model's own tokenizer where it is on this machine (exact: its
special and added control tokens), and, always, the shapes control tokens of the common model
families take (for a remote server's model, and for the model a dataset will train).
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

# The shapes control tokens of the common model families take: the one table of them (the
# tokenizer's own strings are added where it is on this machine). Bounded, so prose with angle
# brackets is left alone.
FAMILY_SHAPES = {
    "ChatML, Llama 3, Qwen, Phi, Command-R, Granite": r"<\|[^<>|\s]{1,48}\|>",  # <|im_start|>, <|eot_id|>
    "DeepSeek (full-width bars)": r"<[|\uff5c][^<>|\uff5c\s]{1,48}[|\uff5c]>",  # <｜end▁of▁sentence｜>, <｜User｜>
    "Gemma, sentencepiece, VLM and tool markers": (
        r"</?(?:s|bos|eos|pad|unk|mask|sep|cls|start_of_turn|end_of_turn|start_of_image|end_of_image|image"
        r"|image_soft_token|fake_token_around_image|global-img|end_of_utterance|think|tool_call|tool_response"
        r"|im_start|im_end|endoftext|row_\d+_col_\d+|sop|eop)>|<unused\d+>"),
    "Llama 2, Mistral": r"\[/?INST\]|<</?SYS>>|\[/?(?:AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS|SYSTEM_PROMPT)\]",
    "GLM": r"\[(?:gMASK|sMASK|MASK)\]",
}
_SHAPES = "|".join(FAMILY_SHAPES.values())
CONTROL_SHAPES = regex.compile(_SHAPES, regex.IGNORECASE)


_ESCAPE = str.maketrans("<>[]", "‹›⁅⁆")  # a DeepSeek token keeps its full-width bars: <> are enough
_UNESCAPE = str.maketrans("‹›⁅⁆", "<>[]")


def _escaped(m: regex.Match) -> str:
    s = m.group().translate(_ESCAPE)
    return s if s != m.group() else " "  # a control string with no bracket: taken out


def unescape(text: str) -> str:
    """Text with Inert's escapes (and Template.quote's &lt; &gt;) turned back, to look for what a
    page tried (docsynth.write.injection); never for a prompt."""
    return text.translate(_UNESCAPE).replace("&lt;", "<").replace("&gt;", ">")


class Inert:
    """Escapes control-token strings in text: the given ones (a tokenizer's) and CONTROL_SHAPES."""

    def __init__(self, specials: Iterable[str] = ()) -> None:
        exact = sorted({s for s in specials if s and not s.isspace()}, key=len, reverse=True)
        parts = [regex.escape(s) for s in exact] + [_SHAPES]
        self.pattern = regex.compile("|".join(parts), regex.IGNORECASE)

    def __call__(self, text: str) -> str:
        # Until nothing matches: a string with no bracket is taken out, and taking "<end_of_turn>"
        # out of "<end_<end_of_turn>of_turn>" would leave a new one.
        while True:
            cleaned = self.pattern.sub(_escaped, text)
            if cleaned == text:
                return text
            text = cleaned

    def found(self, text: str) -> list[str]:
        """The control-token strings in text."""
        return [m.group() for m in self.pattern.finditer(text)]


GENERIC = Inert()


def tokenizer_specials(tokenizer) -> list[str]:
    """A Hugging Face tokenizer's special tokens and its added tokens shaped like markers (<...>,
    [...]): the strings its encoder matches before anything else."""
    out = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for tok in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        content = getattr(tok, "content", str(tok))
        if getattr(tok, "special", False) or (len(content) > 2 and content[0] in "<[" and content[-1] in ">]"):
            out.add(content)
    return sorted(out)
