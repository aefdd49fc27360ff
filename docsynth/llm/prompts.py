"""Prompt templates: files in prompts/, checked when loaded, rendered into chat messages.

A template is a Markdown file: YAML front matter (name, purpose, variables) and a body
cut into messages by lines that are exactly `[system]`, `[user]` or `[assistant]`; or, for a
base model without a chat template, one `[prompt]` section that is sent as plain text to be
continued (a completion prompt, typically few-shot).
Slots are `{{ variable }}`. Rendering substitutes the template's own slots in one pass,
so document text is data: braces or `{{ ... }}` inside a document stay as they are. Nor can a
document close the template's delimiters around it (`Template.quote`): a `</document>` in a
page is escaped (`&lt;/document&gt;`), and a page line that is one of the template's own lines
beside the document (a completion prompt's "Questions and answers about the document:") is put
in quotes, so the page cannot end the document and start the instructions or the answers.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from docsynth.core.errors import DocsynthError
from docsynth.core.plugins import PLUGIN, prompt_folder
from docsynth.core.resources import BUILTIN, builtin_prompts, shipped

# What a vision prompt says in place of the document under generate.text: none.
NO_TEXT = "(No text is given: read the pages from their images.)"

# The variables the generate stage provides; a template may use any of them.
KNOWN_VARIABLES = {
    "document": "the document text (pages in reading order, marked [Page N] when several)",
    "num_pairs": "how many question/answer pairs to ask for",
    "num_pages": "how many pages the document text covers",
    "questions": "the verify stage's numbered questions, to answer from the document alone",
    "pairs": "the verify stage's numbered question/answer pairs, for the judge to rate",
    "answer": "answer-first generation: the answer read off the page, to write a question for",
    "evidence": "answer-first generation: where the answer stands (its line, its key or table row and column)",
    "options": "the verify stage's choice check: the lettered candidate answers to choose from",
    "images": ("the sample's page images, as image parts of the message (generate.vision: true); a template "
               "without this slot gets them at the start of its first user message"),
}
_SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TAG = re.compile(r"</?\s*([A-Za-z][\w-]*)\s*/?>")
_IMAGES = re.compile(r"\{\{\s*images\s*\}\}")
_PAGE_MARK = re.compile(r"\[\s*page\s+\d+\s*\]")  # format_document's own marks
_ROLE = re.compile(r"^\[(system|user|assistant|prompt)\]\s*$", re.M)


def default_prompts_dir() -> Path:
    """DOCSYNTH_PROMPTS, else the templates that ship with docsynth."""
    env = os.environ.get("DOCSYNTH_PROMPTS")
    return Path(env) if env else shipped("prompts")


def prompts_dir(value: str | None, base: Path) -> Path | None:
    """A recipe's prompts_dir: builtin:NAME for a shipped folder, plugin:NAME for a plugin's
    (docsynth.core.plugins), else a folder relative to the recipe's own (None: the default)."""
    if value is None:
        return None
    if value.startswith(BUILTIN):
        return builtin_prompts(value[len(BUILTIN):])
    if value.startswith(PLUGIN):
        return prompt_folder(value[len(PLUGIN):])
    return (base / value).resolve()


@dataclass(slots=True, frozen=True)
class Template:
    name: str
    purpose: str
    variables: tuple[str, ...]
    messages: tuple[tuple[str, str], ...]  # (role, text with slots); one ("prompt", ...) for completion
    path: Path
    tags: tuple[str, ...] = ()  # tag names of the template's own markup (<document>), lower case
    fences: tuple[str, ...] = ()  # the template's lines just before and after {{ document }}, normalised

    @property
    def completion(self) -> bool:
        """A plain-text prompt for a base model to continue, not chat messages."""
        return self.messages[0][0] == "prompt"

    def quote(self, document: str) -> str:
        """Document text that cannot close the template's delimiters: the template's tags escaped,
        and a line equal to a fence line, or to a [Page N] mark, put in quotes."""
        if self.tags:
            tags = "|".join(re.escape(t) for t in self.tags)
            document = re.sub(rf"<(\s*/?\s*(?:{tags})\b[^<>]*)>", r"&lt;\1&gt;", document, flags=re.I)
        lines = document.split("\n")
        for i, line in enumerate(lines):
            key = " ".join(line.split()).casefold()
            if key and (key in self.fences or _PAGE_MARK.fullmatch(key)):
                lines[i] = f'"{line.strip()}"'
        return "\n".join(lines)

    @property
    def visual(self) -> bool:
        """Whether the template places the page images itself (and so needs generate.vision)."""
        return "images" in self.variables

    def render_parts(self, images: list[dict], **values: object) -> list[dict]:
        """Chat messages whose content is a list of parts: the image parts where {{ images }}
        stands, else first in the first user message (before the document, so the engine's
        prefix cache shares them across requests about one sample). The text is cut at the slot
        before substitution, so document text can never place an image."""
        text_values = self.render(**{**values, **({"images": ""} if self.visual else {})})
        out, placed = [], False
        for (role, body), msg in zip(self.messages, text_values):
            pieces = [_SLOT.sub(lambda m: str(values[m.group(1)]), x) for x in _IMAGES.split(body)] if self.visual \
                else [msg["content"]]
            parts: list[dict] = []
            for i, piece in enumerate(pieces):
                if i:
                    parts += images
                if piece.strip():
                    parts.append({"type": "text", "text": piece.strip("\n")})
            if not self.visual and role == "user" and not placed:
                parts, placed = [*images, *parts], True
            out.append({"role": role, "content": parts})
        return out

    def render(self, **values: object) -> list[dict[str, str]]:
        """Chat messages with every slot filled; DocsynthError if a value is missing or extra."""
        missing = [v for v in self.variables if v not in values]
        extra = [v for v in values if v not in self.variables]
        if missing or extra:
            raise DocsynthError(f"prompt '{self.name}': missing values {missing or '[]'}, unexpected {extra or '[]'}")
        text = {k: str(v) for k, v in values.items()}
        return [{"role": role, "content": _SLOT.sub(lambda m: text[m.group(1)], body)} for role, body in self.messages]


def load_template(path: Path) -> Template:
    """Parse and check one template file; the error names the file and the problem."""
    raw = path.read_text()
    m = re.match(r"^---\n(.*?)\n---\n(.*)$", raw, re.S)
    if not m:
        raise DocsynthError(f"{path}: a prompt file starts with YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise DocsynthError(f"{path}: front matter is not valid YAML: {e}") from None
    missing = [k for k in ("name", "purpose", "variables") if k not in meta]
    if missing:
        raise DocsynthError(f"{path}: front matter lacks {', '.join(missing)}")
    declared = tuple(meta["variables"])
    unknown = [v for v in declared if v not in KNOWN_VARIABLES]
    if unknown:
        raise DocsynthError(f"{path}: unknown variables {unknown}; known: {', '.join(KNOWN_VARIABLES)}")
    parts = _ROLE.split(m.group(2))
    if parts[0].strip():
        raise DocsynthError(f"{path}: text before the first [system]/[user] line")
    messages = tuple((role, body.strip()) for role, body in zip(parts[1::2], parts[2::2]))
    roles = [role for role, _ in messages]
    if "prompt" in roles:
        if roles != ["prompt"]:
            raise DocsynthError(f"{path}: a [prompt] (completion) template has that one section and no chat messages")
    elif not messages or roles[-1] != "user":
        raise DocsynthError(f"{path}: needs messages ending with a [user] message, or one [prompt] section")
    used = {s for _, body in messages for s in _SLOT.findall(body)}
    if used - set(declared):
        raise DocsynthError(f"{path}: slots {sorted(used - set(declared))} are not declared in variables")
    if set(declared) - used:
        raise DocsynthError(f"{path}: variables {sorted(set(declared) - used)} are declared but never used")
    if meta["name"] != path.stem:
        raise DocsynthError(f"{path}: name '{meta['name']}' differs from the file name '{path.stem}'")
    return Template(meta["name"], str(meta["purpose"]).strip(), declared, messages, path, *_delimiters(messages))


def _delimiters(messages: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The template's tag names, and its non-empty lines nearest to each {{ document }} slot."""
    tags = sorted({m.lower() for _, body in messages for m in _TAG.findall(body)})
    fences = set()
    for _, body in messages:
        lines = [" ".join(x.split()).casefold() for x in body.split("\n")]
        for i, line in enumerate(lines):
            if _SLOT.search(line) and "document" in _SLOT.findall(line):
                before = [x for x in lines[:i] if x]
                after = [x for x in lines[i + 1:] if x]
                fences.update(x for x in (before[-1:] + after[:1]) if not _SLOT.search(x))
    return tuple(tags), tuple(sorted(fences))


def load_templates(directory: Path | None = None) -> dict[str, Template]:
    """Every template in the folder, by name, in name order."""
    d = directory or default_prompts_dir()
    files = sorted(d.glob("*.md"))
    if not files:
        raise DocsynthError(f"no prompt templates (*.md) in {d}")
    return {t.name: t for t in (load_template(f) for f in files)}


def find_template(name: str, directory: Path | None = None, shipped_too: bool = False) -> Template:
    """One template of the folder by name, else (shipped_too) of a shipped folder (builtin:NAME);
    DocsynthError lists the others if there is none."""
    templates = load_templates(directory)
    if name in templates:
        return templates[name]
    if shipped_too:
        for folder in sorted(p for p in builtin_prompts("").iterdir() if p.is_dir() and any(p.glob("*.md"))):
            found = load_templates(folder)
            if name in found:
                return found[name]
    raise DocsynthError(f"no prompt named '{name}' (have: {', '.join(templates)})")


def choose(names: list[str], weights: list[float] | None, seed: int, key: str) -> str:
    """The template for one sample: a deterministic draw from (seed, key), uniform or weighted."""
    if weights is not None and (len(weights) != len(names) or sum(weights) <= 0 or min(weights) < 0):
        raise DocsynthError("template weights must be non-negative, one per template, not all zero")
    w = weights or [1.0] * len(names)
    u = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64
    acc, total = 0.0, sum(w)
    for name, weight in zip(names, w):
        acc += weight / total
        if u < acc:
            return name
    return names[-1]


def format_document(pages: list[str]) -> str:
    """Document text for a prompt: one page as is, several marked [Page N]."""
    if len(pages) == 1:
        return pages[0].strip()
    return "\n\n".join(f"[Page {i}]\n{text.strip()}" for i, text in enumerate(pages, 1))


def check_templates(names: list[str], directory: Path | None = None) -> dict[str, Template]:
    """The named templates, loaded and checked; DocsynthError names any that do not exist."""
    templates = load_templates(directory)
    missing = [n for n in names if n not in templates]
    if missing:
        raise DocsynthError(f"generate.templates: no prompt named {', '.join(missing)} in "
                            f"{next(iter(templates.values())).path.parent} (have: {', '.join(templates)})")
    return {n: templates[n] for n in names}


def recipe_templates(cfg, base: Path) -> dict[str, Template]:
    """The templates a recipe's generate section names, from its prompts_dir or the default folder."""
    return check_templates(cfg.templates, prompts_dir(cfg.prompts_dir, base))
