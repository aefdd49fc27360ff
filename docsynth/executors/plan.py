"""`docsynth run --dry-run`: what a recipe would cost before any GPU hour is spent. The inputs
are read as ingest reads them (text layers only: a page that needs OCR is counted, not read),
the pages go through generate's page gate and windows, each sample gets the template the stage
would give it, and its requests are built and counted with the model's tokenizer where it is on
this machine (else generate.openai.chars_per_token). Nothing is written and no engine starts."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docsynth.config.recipe import Recipe
from docsynth.generate.answerfirst import is_answer_first, question_request, question_template, spans_for
from docsynth.llm.budget import local_tokens
from docsynth.generate.gate import gate, repeated_lines
from docsynth.llm.prompts import choose, recipe_templates
from docsynth.generate.render import context_for
from docsynth.generate.samples import Prompter, Sample
from docsynth.ingest.pdf import BadDocument, layer_is_usable, layer_reading, open_pdf
from docsynth.ingest.sources import iter_documents, read_document

# Model requests a pair costs in verification, by check (evidence and type are read off the page).
CHECK_CALLS = {"choice": 1, "round_trip": 1, "evidence": 0, "type": 0}


@dataclass(slots=True)
class RunPlan:
    recipe: str
    model: str
    context: int
    tokens_from: str  # "tokenizer" or "N characters a token"
    documents: int = 0
    documents_unreadable: int = 0
    pages: int = 0
    pages_to_ocr: int = 0  # no usable text layer: OCR would read them (not counted in the tokens)
    pages_gated: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    templates: dict[str, int] = field(default_factory=dict)
    generate_requests: int = 0
    prompt_tokens: int = 0  # of the generate requests (answer-first: each repeats its document; the prefix cache shares it)
    max_output_tokens: int = 0  # generate.sampling.max_tokens per request
    pairs_asked: int = 0
    verify_requests: int = 0  # per pair asked, by verify.checks (and the judge); 0 without verify
    model_requests: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def plan_run(recipe: Recipe, base: Path) -> RunPlan:
    g = recipe.generate
    model, context, _ = context_for(g, base)
    tokens = local_tokens(model, g.openai.chars_per_token)
    counted = "tokenizer" if hasattr(tokens, "tok") else f"{g.openai.chars_per_token:g} characters a token"
    templates = recipe_templates(g, base)
    prompter = Prompter(g, templates, tokens, context)
    plan = RunPlan(recipe.name, g.model, context, counted, max_output_tokens=g.sampling.max_tokens)
    gated: Counter[str] = Counter()
    used: Counter[str] = Counter()
    for ref in iter_documents(recipe.inputs, base, lambda r: None):
        plan.documents += 1
        texts = _texts(ref, recipe, plan)
        if texts is None:
            continue
        pages = [(i, t) for i, t in enumerate(texts) if t.strip()]
        if g.gate.enabled:
            repeated = repeated_lines(texts, g.gate)
            kept = []
            for i, t in pages:
                why = gate(t, g.gate, repeated, words=not g.vision)
                if why is None:
                    kept.append((i, t))
                else:
                    gated[why] += 1
            pages = kept
        n = g.max_pages_per_sample
        for k in range(0, len(pages), n):
            win = pages[k:k + n]
            sid = f"{ref.doc_id}:{win[0][0]}-{win[-1][0]}"
            sample = Sample(sid, ref.doc_id, ref.source, [i for i, _ in win], [t for _, t in win],
                            choose(g.templates, g.template_weights, recipe.seed, sid))
            used[sample.template] += 1
            plan.samples += 1
            _requests(recipe, prompter, tokens, sample, plan)
    plan.pages_gated = dict(sorted(gated.items()))
    plan.templates = dict(sorted(used.items()))
    v = recipe.verify
    if v.enabled:
        per_pair = sum(v.votes if c == "vote" else CHECK_CALLS.get(c, 1) for c in v.checks) + (1 if v.judge else 0)
        plan.verify_requests = plan.pairs_asked * per_pair
    plan.model_requests = plan.generate_requests + plan.verify_requests
    return plan


def _texts(ref, recipe: Recipe, plan: RunPlan) -> list[str] | None:
    """The document's page texts as ingest's text layer gives them ("" for a page OCR would read)."""
    try:
        doc = open_pdf(read_document(ref, recipe.inputs.pdf_column))
    except (BadDocument, OSError, Exception):  # noqa: BLE001 - the run would reject it; the plan counts it
        plan.documents_unreadable += 1
        return None
    texts = []
    with doc:
        for page in doc:
            plan.pages += 1
            try:
                text = layer_reading(page, "geometry")[0]
            except Exception:  # noqa: BLE001 - a damaged page: the run would reject or OCR it
                text = ""
            if recipe.ingest.ocr.mode == "always" or not layer_is_usable(text, recipe.ingest.ocr):
                plan.pages_to_ocr += 1
                text = ""
            texts.append(text)
    return texts


def _requests(recipe: Recipe, prompter: Prompter, tokens, sample: Sample, plan: RunPlan) -> None:
    """Count the requests generate would send for one sample, and their prompt tokens."""
    request = prompter.request(sample, 0)  # fits the text to the budget (sample.text), as the stage does
    if is_answer_first(recipe.generate, sample):
        spans = spans_for(recipe.generate, recipe.seed, sample, prompter.num_pairs(sample))
        if spans:
            template = question_template()
            for _, span in spans:
                plan.prompt_tokens += _count(tokens, question_request(template, sample, span, 0))
            plan.generate_requests += len(spans)
            plan.pairs_asked += len(spans)
            return
    plan.prompt_tokens += _count(tokens, request)
    plan.generate_requests += 1
    plan.pairs_asked += prompter.num_pairs(sample)


def _count(tokens, request) -> int:
    if request.prompt is not None:
        return tokens.count(request.prompt)
    return sum(tokens.count(m["content"] if isinstance(m["content"], str) else
                            " ".join(p.get("text", "") for p in m["content"])) for m in request.messages)
