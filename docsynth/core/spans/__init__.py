"""Candidate answers read off a page deterministically (issue 30): extract (a line's dates,
amounts, figures, codes, key-value pairs and names), tables (rows of numeric cells under their
headers), pick (a sample's spans by page, the ones asked about, the choice's options, the
evidence check)."""

from docsynth.core.spans.extract import KINDS, Span, extract_spans
from docsynth.core.spans.pick import FAMILY, Evidence, document_spans, evidence_holds, options_for, pick_spans

__all__ = ["FAMILY", "KINDS", "Evidence", "Span", "document_spans", "evidence_holds", "extract_spans", "options_for",
           "pick_spans"]
