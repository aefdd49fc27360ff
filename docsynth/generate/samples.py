"""From ingested pages to samples: windows of consecutive pages of one document, each with
its template, its seeds and its prompt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.errors import DocsynthError
from docsynth.core.inert import Inert
from docsynth.llm.backends import ChatRequest, derive_seed  # noqa: F401 (derive_seed: generate's users import it here)
from docsynth.llm.budget import Tokens, fit
from docsynth.generate.gate import gate, repeated_lines
from docsynth.llm.images import ImageTokens, PageImage, budget_size, fit_image
from docsynth.core.text import normalise
from docsynth.llm.parse import qa_json_schema
from docsynth.llm.prompts import NO_TEXT, Template, choose, format_document
from docsynth.core.records import Reject
from docsynth.config.recipe import GenerateConfig

TEXT_COLUMNS = ["doc_id", "source", "page", "num_pages", "text"]
MIN_DOCUMENT_TOKENS = 32
# Threads fitting page images (PIL decodes, resizes and encodes without the GIL): 15 ms a 150-dpi
# page on one core of this machine, so a wave of 1,024 pages takes 15 s on one thread.
FIT_THREADS = min(8, os.cpu_count() or 1)


@dataclass(slots=True)
class Sample:
    """One window of a document's pages, planned for generation."""

    sample_id: str
    doc_id: str
    source: str
    pages: list[int]
    texts: list[str]
    template: str
    text: str = ""  # the document text as given to the model, after truncation
    truncated: bool = False
    images: list[PageImage] = field(default_factory=list)  # with generate.vision: the pages, fitted to the budget


def _documents(shard: Path, images: bool = False) -> Iterator[list[dict]]:
    """Rows (text columns, and the page image where asked) of one ingest shard, grouped by
    document, in page order."""
    doc: list[dict] = []
    columns = TEXT_COLUMNS + (["image"] if images else [])
    for batch in pq.ParquetFile(shard).iter_batches(batch_size=32 if images else 256, columns=columns):
        for row in batch.to_pylist():
            if doc and row["doc_id"] != doc[0]["doc_id"]:
                yield doc
                doc = []
            doc.append(row)
    if doc:
        yield doc


def plan_samples(shard: Path, cfg: GenerateConfig, seed: int, rejects: list[Reject],
                 skip: dict | None = None, gated: list | None = None) -> list[Sample]:
    """The samples of one ingest shard: each document cut into windows of max_pages_per_sample
    pages (or skipped when longer, as the recipe says); pages without text are left out, and so
    are the documents and pages `skip` names (ingest's near-duplicates). With generate.vision,
    each sample holds its page images fitted to max_image_pixels (an unreadable one: a reject).
    Pages the gate leaves out (generate.gate) are appended to `gated` as [doc_id, page, reason]."""
    out: list[tuple[Sample, list]] = []
    n = cfg.max_pages_per_sample
    pool = ThreadPoolExecutor(FIT_THREADS) if cfg.vision else None
    skip_docs = set((skip or {}).get("documents", ()))
    skip_pages = {tuple(p) for p in (skip or {}).get("pages", ())}
    for rows in _documents(shard, cfg.vision):
        first = rows[0]
        if first["doc_id"] in skip_docs:  # a near-duplicate (ingest.dedup): its reject is ingest's
            continue
        rows = [r for r in rows if (r["doc_id"], r["page"]) not in skip_pages]
        if not rows:
            continue
        if cfg.long_documents == "skip" and first["num_pages"] > n:
            rejects.append(Reject("generate", first["source"], first["doc_id"], None,
                                  f"skipped: {first['num_pages']} pages > max_pages_per_sample {n}"))
            continue
        rows = sorted(rows, key=lambda r: r["page"])
        with_text = [r for r in rows if r["text"].strip()]
        if not with_text:
            rejects.append(Reject("generate", first["source"], first["doc_id"], None, "no text: no page has any"))
            continue
        if cfg.gate.enabled:
            repeated = repeated_lines([r["text"] for r in rows], cfg.gate)
            kept = []
            for r in with_text:
                why = gate(r["text"], cfg.gate, repeated, words=not cfg.vision)
                if why is None:
                    kept.append(r)
                elif gated is not None:
                    gated.append([r["doc_id"], r["page"], why])
            with_text = kept
        for i in range(0, len(with_text), n):
            win = with_text[i:i + n]
            sid = f"{first['doc_id']}:{win[0]['page']}-{win[-1]['page']}"
            s = Sample(sid, first["doc_id"], first["source"], [r["page"] for r in win], [r["text"] for r in win],
                       choose(cfg.templates, cfg.template_weights, seed, sid))
            out.append((s, [pool.submit(fit_image, r["image"], cfg.max_image_pixels) for r in win] if pool else []))
    if pool is None:
        return [s for s, _ in out]
    with pool:
        return [s for s, fits in out if _fitted(s, fits, rejects)]


def _fitted(s: Sample, fits: list, rejects: list[Reject]) -> bool:
    """The sample with its page images fitted (by the pool), or a reject for an unreadable one."""
    try:
        s.images = [f.result() for f in fits]
        return True
    except ValueError as e:
        rejects.append(Reject("generate", s.source, s.doc_id, s.pages[0], f"bad image: {e}"))
        return False


class Prompter:
    """Renders a sample's prompt with its text fitted to the context budget."""

    def __init__(self, cfg: GenerateConfig, templates: dict[str, Template], tokens: Tokens, context: int,
                 num_pairs: int | None = None, images: ImageTokens | None = None) -> None:
        """num_pairs: ask this many pairs of every sample, instead of pairs_per_page per page;
        images: the model's image token counts (generate.vision)."""
        self.cfg, self.templates, self.tokens, self.context = cfg, templates, tokens, context
        self.images = images
        self.inert = Inert(getattr(tokens, "specials", ()))
        self._num_pairs = num_pairs
        self._overhead: dict[tuple[str, int], int] = {}
        self._shells: dict[tuple[str, int], str] = {}

    def num_pairs(self, sample: Sample) -> int:
        return self._num_pairs or self.cfg.pairs_per_page * len(sample.pages)

    def _values(self, t: Template, sample: Sample, document: str) -> dict:
        values = {"document": document, "num_pairs": self.num_pairs(sample), "num_pages": len(sample.pages),
                  "images": ""}  # where the images stand, for the text alone (render_parts places them)
        return {k: v for k, v in values.items() if k in t.variables}

    def _fixed_tokens(self, t: Template, sample: Sample) -> int:
        """Tokens of the prompt without the document, plus the [Page N] marks and chat framing."""
        key = (t.name, len(sample.pages))
        if key not in self._overhead:
            empty = format_document([""] * len(sample.pages))
            msgs = t.render(**self._values(t, sample, empty))
            self._overhead[key] = sum(self.tokens.count(m["content"]) + 8 for m in msgs) + 16
        return self._overhead[key]

    def check(self) -> None:
        """DocsynthError if some template leaves no room for the document within the context
        (a recipe problem, better said once than as a reject per sample)."""
        n = self.cfg.max_pages_per_sample
        probe = Sample("", "", "", [0] * n, [""] * n, "")
        pictures = n * self.images.count(*budget_size(self.cfg.max_image_pixels)) if self.cfg.vision and self.images else 0
        for t in self.templates.values():
            if t.visual and not self.cfg.vision:
                raise DocsynthError(f"prompt '{t.name}' asks about the page images: set generate.vision: true "
                                    "(and a vision-language model)")
            if t.completion and self.cfg.vision:
                raise DocsynthError(f"prompt '{t.name}' is a plain-text completion prompt, which cannot carry images; "
                                    "generate.vision needs chat templates")
            room = self.context - self.cfg.sampling.max_tokens - self._fixed_tokens(t, probe) - pictures
            if room < MIN_DOCUMENT_TOKENS and pictures:
                raise DocsynthError(
                    f"prompt '{t.name}' with {n} page images of up to {self.cfg.max_image_pixels:,} pixels "
                    f"({pictures} tokens) and sampling.max_tokens {self.cfg.sampling.max_tokens} leaves {room} of the "
                    f"model's {self.context}-token context for the text; lower generate.max_image_pixels or "
                    "max_pages_per_sample, or raise the context")
            if room < MIN_DOCUMENT_TOKENS:
                raise DocsynthError(
                    f"prompt '{t.name}' takes {self._fixed_tokens(t, probe)} tokens and sampling.max_tokens "
                    f"{self.cfg.sampling.max_tokens}, which leaves {room} of the model's {self.context}-token context "
                    f"for the document; lower sampling.max_tokens or raise generate.context_tokens / max_model_len")

    def shell(self, sample: Sample) -> str:
        """The prompt's own words (the template rendered without the document), normalised, padded
        with spaces: a pair found in it was copied from the instructions or examples."""
        t = self.templates[sample.template]
        key = (t.name, len(sample.pages))
        if key not in self._shells:
            msgs = t.render(**self._values(t, sample, ""))
            self._shells[key] = f" {normalise(' '.join(m['content'] for m in msgs))} "
        return self._shells[key]

    def request(self, sample: Sample, seed: int) -> ChatRequest:
        t = self.templates[sample.template]
        budget = self.context - self.cfg.sampling.max_tokens - self._fixed_tokens(t, sample)
        if self.images:  # the images' tokens first: they are not cut, the text is
            budget -= sum(self.images.count(im.width, im.height) for im in sample.images)
        budget -= budget // 50  # 2% margin: cutting and joining texts can shift token boundaries
        if budget < MIN_DOCUMENT_TOKENS:
            raise ValueError(f"the context ({self.context} tokens) leaves no room for the document after the "
                             f"prompt and sampling.max_tokens ({self.cfg.sampling.max_tokens})")
        if not sample.text:  # pages as data: no control token, no closing delimiter (docsynth.core.inert, Template.quote)
            texts, sample.truncated = fit([t.quote(self.inert(x)) for x in sample.texts], budget, self.tokens)
            sample.text = format_document(texts)
        schema = qa_json_schema(self.num_pairs(sample) + 2, self.cfg.max_pair_chars) if self.cfg.guided_json else None
        if self.cfg.vision:
            document = NO_TEXT if self.cfg.text == "none" else sample.text
            values = {k: v for k, v in self._values(t, sample, document).items() if k != "images"}
            return ChatRequest(t.render_parts([im.part() for im in sample.images], **values), seed, schema)
        msgs = t.render(**self._values(t, sample, sample.text))
        if t.completion:
            return ChatRequest([], seed, schema, prompt=msgs[0]["content"])
        return ChatRequest(msgs, seed, schema)
