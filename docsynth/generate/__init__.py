"""The generate stage: samples planned from ingested pages (the page gate, windows, templates),
answer-first requests built from the page's own spans, outcomes parsed and grounded, candidates
written per task."""
