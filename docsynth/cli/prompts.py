"""`docsynth prompts list | show NAME | render NAME --doc FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth.generate.prompts import KNOWN_VARIABLES, format_document, load_templates
from docsynth.ingest.stage import file_page_texts
from docsynth.recipe import IngestConfig

app = typer.Typer(help="The prompt templates in prompts/: list them, show one, render one for a document.",
                  no_args_is_help=True)
DirOption = Annotated[Path | None, typer.Option("--dir", help="Template folder (default: DOCSYNTH_PROMPTS or prompts/).")]


def _template(name: str, directory: Path | None):
    templates = load_templates(directory)
    if name not in templates:
        raise common.DocsynthError(f"no prompt named '{name}' (have: {', '.join(templates)})")
    return templates[name]


@app.command("list")
def list_(directory: DirOption = None,
          json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every template with its purpose and variables (checked as they load)."""
    with common.failures():
        templates = load_templates(directory)
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
    """The template file as written."""
    with common.failures():
        t = _template(name, directory)
    typer.echo(t.path.read_text(), nl=False)  # verbatim, never re-wrapped


@app.command("render")
def render(
    name: Annotated[str, typer.Argument(help="Template name.")],
    doc: Annotated[Path, typer.Option("--doc", help="A PDF (read as ingest reads it) or a .txt file.")],
    pairs: Annotated[int, typer.Option(help="num_pairs to ask for.")] = 4,
    directory: DirOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the chat messages as JSON.")] = False,
) -> None:
    """Exactly the chat messages the model receives for this document."""
    with common.failures():
        t = _template(name, directory)
        pages = file_page_texts(doc, IngestConfig())
        values = {"document": format_document(pages), "num_pairs": pairs, "num_pages": len(pages)}
        messages = t.render(**{k: v for k, v in values.items() if k in t.variables})
    if json_out:
        common.print_json(messages)
        return
    for m in messages:  # verbatim: no wrapping, no markup, exactly the message text
        typer.echo(f"----- {m['role']} -----")
        typer.echo(m["content"])
