"""The recipe's generate.gate section: which pages are not worth asking about (docsynth.generate.gate)."""

from __future__ import annotations

from pydantic import Field

from docsynth.config.section import Section


class PageGateConfig(Section):
    """Pages left out before generation, each counted with its reason: near-empty pages, pages that
    are only their document's running heads and footers, tables of contents, indexes and reference
    lists. No model token is spent on them."""

    enabled: bool = Field(True, description="gate pages before generation (false: every page with text is asked about)")
    min_words: int = Field(12, ge=0, description=(
        "a page with fewer words is near-empty (not under generate.vision: a chart with a caption is worth asking)"))
    min_lines: int = Field(5, ge=1, description="a page with fewer lines is never taken for a list (contents, index, references)")
    list_share: float = Field(0.6, gt=0, le=1, description=(
        "share of a page's lines that must look like contents entries, index entries or citations for it to be "
        "one (0.4 under a 'Contents' or 'Index' heading, 0.3 of citations under a 'References' heading)"))
    repeated_share: float = Field(0.5, gt=0, le=1, description=(
        "a line on at least this share of a document's pages (3 pages or more) is boilerplate; a page with "
        "little else is gated"))
