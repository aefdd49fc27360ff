"""The recipe's filter sections: one pydantic model per filter, told apart by `name`; a name
that is not docsynth's own is a plugin's (docsynth.core.plugins), checked against its Config."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Discriminator, Field, PrivateAttr, Tag, ValidationError, model_validator

from docsynth.core import plugins
from docsynth.config.section import Section


class CodeFilter(Section):
    """Drop pairs whose answer or question contains code."""

    name: Literal["code"] = "code"
    max_symbol_ratio: float = Field(0.12, gt=0, le=1, description=(
        "share of code punctuation ({}[];=<>|&$\\) above which a text of 20+ characters counts as code"))


class UnanswerableFilter(Section):
    """Drop answers that say the question cannot be answered ("unanswerable", "not mentioned in the document", ...)."""

    name: Literal["unanswerable"] = "unanswerable"
    extra_phrases: list[str] = Field(default_factory=list, description="more phrases that mark a non-answer")


class LengthFilter(Section):
    """Drop pairs whose question or answer is outside these bounds (characters)."""

    name: Literal["length"] = "length"
    min_question_chars: int = Field(8, ge=0, description="shorter questions are dropped")
    max_question_chars: int = Field(300, ge=1, description="longer questions are dropped")
    min_answer_chars: int = Field(1, ge=0, description="shorter answers are dropped")
    max_answer_chars: int = Field(400, ge=1, description="longer answers are dropped")


class NearDuplicatesFilter(Section):
    """Drop a question the same as, or nearly the same as, one kept earlier in its sample."""

    name: Literal["near_duplicates"] = "near_duplicates"
    threshold: float = Field(0.9, gt=0, le=1, description="similarity of normalised questions (0..1) from which two are duplicates")


class LanguageFilter(Section):
    """Drop pairs not in one of the allowed languages (langdetect on question + answer)."""

    name: Literal["language"] = "language"
    allowed: list[str] = Field(default_factory=lambda: ["en"], min_length=1, description="ISO 639-1 codes, e.g. [en, fr]")
    min_letters: int = Field(12, ge=0, description="shorter pairs are kept: too short to tell")


class GroundedFilter(Section):
    """Drop answers the sample's text does not support (the cheap hallucination check)."""

    name: Literal["grounded"] = "grounded"
    min_score: float = Field(0.8, ge=0, le=1, description=(
        "support needed: 1 = found verbatim; else the best of a fuzzy match and the share of the "
        "answer's content words found in the text"))
    skip_templates: list[str] = Field(["charts_figures", "layout_visual"], description=(
        "templates whose answers are read off the page image (a value read from a chart's axis, a stamp's "
        "wording), which the text layer need not hold: their pairs pass this filter"))


class InjectionFilter(Section):
    """Drop pairs a page planted: copied from its own Q/A list or from a passage addressing the
    model, and not supported by the rest of the page; or with a link the rest of the page lacks."""

    name: Literal["injection"] = "injection"
    qa_blocks: bool = Field(True, description=(
        "count the page's own Q:/A: lines as planted (false for an FAQ corpus, whose Q/A lists are its content; "
        "instruction-like passages, control tokens and foreign links are flagged either way)"))


class VerifiedFilter(Section):
    """Drop pairs whose round trip disagreed (the verify stage's verdict, docsynth.core.agree)."""

    name: Literal["verified"] = "verified"
    unchecked: Literal["keep", "drop"] = Field("keep", description=(
        "pairs the verifier did not check: of a skipped template, a reply it could not parse, or a run without "
        "the verify stage"))


RatingAxis = Literal["relevance", "formatting", "visual_dependency", "image_correspondence", "correctness"]


class MinRatingFilter(Section):
    """Drop pairs the judge (verify.judge) rated below a floor: {axis: lowest score kept, 1-5}."""

    name: Literal["min_rating"] = "min_rating"
    axes: dict[RatingAxis, Annotated[int, Field(ge=1, le=5)]] = Field(min_length=1, description=(
        "e.g. {correctness: 4, relevance: 3}; FineVision found that filtering on ratings can cost more than it "
        "gains, so nothing is dropped unless asked"))
    unrated: Literal["keep", "drop"] = Field("keep", description="pairs without a rating on an axis asked for")


BUILTIN_FILTERS = (CodeFilter, UnanswerableFilter, LengthFilter, NearDuplicatesFilter, LanguageFilter, GroundedFilter,
                   InjectionFilter, VerifiedFilter, MinRatingFilter)
FILTER_MODELS: dict[str, type[Section]] = {m.model_fields["name"].default: m for m in BUILTIN_FILTERS}


class PluginFilter(Section):
    """A filter from another package (entry point group docsynth.filters): `name` and the keys
    of its Config."""

    model_config = ConfigDict(extra="allow")
    name: str
    _config: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _known(self) -> PluginFilter:
        if self.name not in plugins.installed("filters"):
            raise ValueError(plugins.unknown("filters", self.name, list(FILTER_MODELS)))
        cls = plugins.load("filters", self.name)
        try:
            self._config = cls.Config.model_validate(self.model_extra or {})
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise ValueError(f"filter plugin '{self.name}': {problems}") from None
        except AttributeError:
            raise ValueError(f"filter plugin '{self.name}' ({cls!r}) has no Config model") from None
        return self

    def build(self) -> Any:
        """The plugin's filter, made from its validated Config."""
        return plugins.load("filters", self.name)(self._config)


def _filter_tag(v: Any) -> str:
    name = v.get("name") if isinstance(v, dict) else getattr(v, "name", None)
    return name if name in FILTER_MODELS else "plugin"


FilterConfig = Annotated[Union[tuple(Annotated[m, Tag(n)] for n, m in FILTER_MODELS.items())  # noqa: UP007
                               + (Annotated[PluginFilter, Tag("plugin")],)], Discriminator(_filter_tag)]


def default_filters() -> list:
    return [CodeFilter(), UnanswerableFilter(), LengthFilter(), NearDuplicatesFilter(), GroundedFilter(),
            InjectionFilter()]
