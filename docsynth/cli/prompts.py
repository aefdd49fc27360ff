"""`docsynth prompts list | show NAME | render NAME --doc FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth.api.show import (KNOWN_VARIABLES, file_page_texts, find_template, load_templates, prompts_dir,
                                render_prompt)

app = typer.Typer(help="The prompt templates: list them, show one, render one for a document as the model receives it.",
                  no_args_is_help=True)
DirOption = Annotated[str | None, typer.Option("--dir", metavar="DIR", help=(
    "Template folder, or builtin:NAME for a shipped one (builtin:base: the few-shot template for base "
    "models) (default: the recipe's generate.prompts_dir, else DOCSYNTH_PROMPTS, else the shipped templates)."))]


def _folder(directory: str | None) -> Path | None:
    return prompts_dir(directory, Path.cwd())


@app.command("list")
def list_(directory: DirOption = None,
          json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every template with its purpose and variables (checked as they load)."""
    with common.failures():
        templates = load_templates(_folder(directory))
    if json_out:
        common.print_json([{"name": t.name, "purpose": t.purpose, "variables": list(t.variables),
                            "path": str(t.path)} for t in templates.values()])
        return
    table = Table("name", "purpose", "variables")
    for t in templates.values():
        table.add_row(t.name, t.purpose, ", ".join(t.variables))
    common.out.print(table)
    common.out.print("variables: " + "; ".join(f"{k}: {v}" for k, v in KNOWN_VARIABLES.items()), highlight=False)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="Template name.")], directory: DirOption = None) -> None:
    """The template file as written (a name not in the folder is looked for in the shipped
    folders too: `few_shot_qa` is builtin:base's)."""
    with common.failures():
        t = find_template(name, _folder(directory), shipped_too=directory is None)
    typer.echo(t.path.read_text(), nl=False)  # verbatim, never re-wrapped


@app.command("render")
def render(
    name: Annotated[str, typer.Argument(help="Template name.")],
    doc: Annotated[Path, typer.Option("--doc", help="A PDF (read as the recipe's ingest reads it) or a .txt file.")],
    recipe: Annotated[Path | None, typer.Option("--recipe", "-r", help=(
        "The recipe whose ingest, generate and seed settings apply (default: every default).")) ] = None,
    pairs: Annotated[int | None, typer.Option(min=1, help=(
        "Ask for this many pairs (default: as the stage asks, generate.pairs_per_page per page)."))] = None,
    directory: DirOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the chat messages as JSON.")] = False,
) -> None:
    """Exactly what the model receives for this document: the first sample the generate stage
    would make of it (up to generate.max_pages_per_sample pages), its text fitted to the context
    budget with the model's tokenizer where it is on this machine."""
    with common.failures():
        r, base = common.recipe_with(recipe, {})
        out = render_prompt(r.generate, r.seed, base, name, doc, file_page_texts(doc, r.ingest), _folder(directory),
                            pairs)
    req = out.request
    messages = [{"role": "prompt", "content": req.prompt}] if req.prompt is not None else req.messages
    if json_out:
        common.print_json(messages)  # image parts as the model gets them (data URIs)
        return
    for m in messages:  # verbatim: no wrapping, no markup, exactly the message text
        typer.echo(f"----- {m['role']} -----")
        if isinstance(m["content"], str):
            typer.echo(m["content"])
            continue
        for part in m["content"]:  # generate.vision: text and image parts, in order
            typer.echo(part["text"] if part["type"] == "text" else "[page image]")
    s = out.sample
    common.err.print(f"[dim]pages 1-{len(s.pages)} of {out.pages}; context {out.context} tokens ({out.context_from})"
                     + ("; the text was cut to fit" if s.truncated else "") + "[/dim]", highlight=False)
