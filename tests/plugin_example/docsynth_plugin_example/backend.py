"""A backend plugin with no model: for each request it answers with the numbers of the
document, one pair each ("Which figure comes N-th?" -> the number). Deterministic, for tests."""

from __future__ import annotations

import json
import re

from docsynth.llm.backends import Completion

_NUMBER = re.compile(r"\d[\d,.]*\d|\d")


class FirstNumber:
    def __init__(self, generate) -> None:  # the recipe's generate section
        self.model = generate.model

    def context_length(self) -> int:
        return 8192

    def complete(self, requests, sampling):
        out = []
        for r in requests:
            text = r.prompt if r.prompt is not None else r.messages[-1]["content"]
            doc = text.split("<document>", 1)[-1].split("</document>", 1)[0]
            numbers = list(dict.fromkeys(_NUMBER.findall(doc)))[:4]
            pairs = [{"question": f"Which figure comes number {i + 1} on the page?", "answer": n}
                     for i, n in enumerate(numbers)]
            reply = json.dumps(pairs)
            out.append(Completion(reply, "stop", prompt_tokens=len(text) // 4, output_tokens=len(reply) // 4))
        return out

    def close(self) -> None:
        pass
