"""What the model receives for one document, built the way the generate stage builds it: the
recipe's template and token budget fit the document's page texts (read by the caller with the
recipe's ingest settings) with the model's tokenizer where it is on this machine, and the first
sample's request is returned."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from docsynth.config.recipe import GenerateConfig
from docsynth.llm.backends import ChatRequest
from docsynth.llm.budget import local_tokens
from docsynth.llm.images import blank_page
from docsynth.llm.models import PREFIX, dtype_for, package_model_folder
from docsynth.llm.prompts import find_template, prompts_dir
from docsynth.generate.samples import Prompter, Sample, derive_seed


@dataclass(slots=True)
class Rendered:
    request: ChatRequest
    sample: Sample  # its text is the document as given to the model (truncated: sample.truncated)
    context: int
    context_from: str  # where the context size came from
    pages: int  # pages the document has (the sample holds the first generate.max_pages_per_sample)


def context_for(g: GenerateConfig, base: Path) -> tuple[str, int, str]:
    """(the model's local name, the context the stage would use, where that came from)."""
    model = g.model
    if model.startswith(PREFIX):  # prepared once by the first run; until then its tokenizer is not here
        model = str(package_model_folder(model[len(PREFIX):], dtype_for(g.model_dtype)))
    elif (base / model).is_dir():
        model = str((base / model).resolve())
    return (model, *_context(g, model))


def _context(g: GenerateConfig, model: str) -> tuple[int, str]:
    """The context the stage would use, without starting an engine."""
    if g.context_tokens:
        return g.context_tokens, "generate.context_tokens"
    if g.backend == "vllm" and "max_model_len" in g.engine:
        return int(g.engine["max_model_len"]), "generate.engine.max_model_len"
    try:
        config = json.loads((Path(model) / "config.json").read_text())
        n = config.get("max_position_embeddings") or config.get("text_config", {}).get("max_position_embeddings")
        if n:
            return int(n), "the model's config.json"
    except (OSError, ValueError):
        pass
    return g.openai.default_context, "generate.openai.default_context (the model's own is not known here)"


def render(g: GenerateConfig, seed: int, base: Path, template: str, doc: Path, texts: list[str], templates_dir: Path | None = None,
           num_pairs: int | None = None) -> Rendered:
    """The request of the first sample of the document `doc` whose pages have these texts."""
    templates = {template: find_template(template, templates_dir or prompts_dir(g.prompts_dir, base))}
    model, context, context_from = context_for(g, base)
    window = texts[:g.max_pages_per_sample]
    sid = f"{doc.name}:0-{len(window) - 1}"
    sample = Sample(sid, doc.name, str(doc), list(range(len(window))), window, template)
    if g.vision:  # where the page images go (white stand-ins of the budget's size: the text is what is rendered)
        sample.images = [blank_page(g.max_image_pixels) for _ in window]
    prompter = Prompter(g, templates, local_tokens(model, g.openai.chars_per_token), context, num_pairs)
    request = prompter.request(sample, derive_seed(seed, sid))
    return Rendered(request, sample, context, context_from, len(texts))
