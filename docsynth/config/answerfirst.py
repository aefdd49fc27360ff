"""The recipe's generate.answer_first section (docsynth.generate.answerfirst)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from docsynth.config.section import Section
from docsynth.core.spans import KINDS


class AnswerFirstConfig(Section):
    """generate.strategy: answer_first. Candidate answers are read off each page (docsynth.core.spans:
    numbers with unit and scale, amounts, dates, codes, key-value lines, table cells with their
    headers, names); the model only writes the question for each, seeing its page and where the
    answer stands. Each pair records its evidence (page, span, offsets)."""

    templates: list[str] = Field(["specific_facts", "short_extraction", "tables_layout"], description=(
        "templates whose samples are made answer-first (templates of stated facts); the others (overview, "
        "reasoning) stay model-first"))
    kinds: dict[str, list[str]] = Field(default_factory=lambda: {
        "specific_facts": ["amount", "percent", "quantity", "date", "number", "cell", "name", "code", "value"],
        "short_extraction": ["code", "date", "value", "name", "amount", "number", "quantity", "percent", "cell"],
        "tables_layout": ["cell", "amount", "percent", "quantity", "number", "value", "date", "code"],
    }, description=(
        "per template, the span kinds it asks about, in the order it prefers them (a template not named here: "
        "every kind in docsynth.core.spans.KINDS order)"))
    max_question_tokens: int = Field(64, ge=8, description="tokens the model may write for one question")
    temperature: float = Field(0.0, ge=0, le=2, description=(
        "sampling temperature of the question writer (0: greedy; the rest of generate.sampling applies)"))
    no_spans: Literal["model_first", "skip"] = Field("model_first", description=(
        "a sample whose text has no candidate answer: asked model-first with its template, or skipped (a reject)"))

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for template, kinds in v.items():
            unknown = [k for k in kinds if k not in KINDS]
            if unknown:
                raise ValueError(f"{template}: unknown span kinds {unknown} (known: {', '.join(KINDS)})")
        return v
