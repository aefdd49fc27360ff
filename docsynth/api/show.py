"""What only the command line shows, beside the API's operations: a few samples of a stage's
output, the preview's terminal drawing, prompt templates rendered for a document, a mixture's
plan, and the limits its tables quote. The CLI imports these from here, never from the layers
below (the import contract in pyproject.toml), so this module is the whole of what it reaches."""

from __future__ import annotations

from docsynth.dataset.export import FORMATS
from docsynth.decontam.index import guess_adapter
from docsynth.generate.render import render as render_prompt
from docsynth.generate.stage import GROUNDED_AT
from docsynth.generate.view import sample_candidates
from docsynth.ingest.pages import file_page_texts
from docsynth.ingest.view import sample_pages
from docsynth.llm.backends.vllm import shutdown_engines
from docsynth.llm.prompts import KNOWN_VARIABLES, find_template, load_templates, prompts_dir, recipe_templates
from docsynth.mixing.mixer import plan_summary
from docsynth.mixing.report import filtered_text
from docsynth.preview import DRAW, Item, describe, rejects, samples, terminal_graphics
from docsynth.verify.pairs import check_pairs, read_pairs

__all__ = ["DRAW", "FORMATS", "GROUNDED_AT", "KNOWN_VARIABLES", "Item", "check_pairs", "describe", "file_page_texts",
           "filtered_text", "find_template", "guess_adapter", "load_templates", "plan_summary", "prompts_dir",
           "read_pairs", "recipe_templates", "rejects", "render_prompt", "sample_candidates", "sample_pages", "samples",
           "shutdown_engines", "terminal_graphics"]

