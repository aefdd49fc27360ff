"""What the page gate (generate.gate) saves: the share of generation's prompt tokens spent on pages
not worth asking about, on sample_pdfs/ and on real documents.

    .venv/bin/python bench/gate.py [--corpus samples|r-manuals|DIR ...] [--json]

`r-manuals` is the GNU R manuals shipped as PDFs in Debian's r-doc-pdf package (R-intro, R-data,
R-lang, R-FAQ, R-admin: manuals with contents, indexes and reference lists, the shape of
enterprise corpora); it is fetched with `apt-get download` once into ~/.cache/docsynth/bench.

For each corpus, in one process: ingest it (docsynth's ingest, text layer; cached per corpus),
then plan generation's samples twice over the same pages (docsynth.generate.samples, the code
`docsynth run` runs): the baseline with the gate off, docsynth with it on. Tokens are the
instruct recipe's prompt per page (its template with the page text, counted with the model's
tokenizer where it is prepared on this machine, else 4 characters a token). Prints the pages
gated by reason, the prompt tokens of each, their ratio, and the gate's own time per page.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docsynth.config.recipe import Recipe, load_recipe  # noqa: E402
from docsynth.core.tasks import TaskStore  # noqa: E402
from docsynth.executors.local import run_ingest  # noqa: E402
from docsynth.llm.models import cache_dir  # noqa: E402
from docsynth.llm.prompts import recipe_templates  # noqa: E402
from docsynth.generate.samples import plan_samples  # noqa: E402

R_MANUALS = ["R-intro.pdf", "R-data.pdf", "R-lang.pdf", "R-FAQ.pdf", "R-admin.pdf"]


def r_manuals() -> Path:
    """The R manuals of Debian's r-doc-pdf, downloaded and unpacked once."""
    d = cache_dir() / "bench" / "r-manuals"
    if all((d / f).is_file() for f in R_MANUALS):
        return d
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "r-doc-pdf"], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("r-doc-pdf_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp + "/x"], check=True)
        for f in R_MANUALS:
            (d / f).write_bytes((Path(tmp) / "x/usr/share/R/doc/manual" / f).read_bytes())
    return d


def counter(recipe: Recipe):
    """Tokens of a text: the model's tokenizer where prepared here, else 4 characters a token."""
    try:
        from transformers import AutoTokenizer

        from docsynth.llm.models import resolve_model

        tok = AutoTokenizer.from_pretrained(resolve_model(recipe.generate.model, ROOT, recipe.generate.model_dtype))
        return lambda t: len(tok(t)["input_ids"]), "the model's tokenizer"
    except Exception:  # noqa: BLE001 - no tokenizer here: the estimate
        return lambda t: len(t) // 4 + 1, "4 characters a token"


def measure(name: str, inputs: Path, recipe: Recipe, work: Path, count) -> dict:
    pages_dir = work / name
    r = recipe.model_copy(update={"inputs": recipe.inputs.model_copy(update={"paths": [str(inputs)],
                                                                            "docs_per_task": 1})})
    run_ingest(r, ROOT, pages_dir)
    shards = [f.shard for f in TaskStore.of(pages_dir, "ingest").finished()]
    template = next(iter(recipe_templates(recipe.generate, ROOT).values()))
    overhead = count("\n".join(m["content"] for m in template.render(
        **{k: "" if k == "document" else 4 for k in template.variables})))
    out = {}
    for label, on in (("baseline (no gate)", False), ("docsynth (gate)", True)):
        g = recipe.generate.model_copy(update={"max_pages_per_sample": 1, "vision": False,
                                               "gate": recipe.generate.gate.model_copy(update={"enabled": on})})
        t0 = time.perf_counter()
        gated: list = []
        samples = [s for shard in shards for s in plan_samples(shard, g, recipe.seed, [], None, gated)]
        seconds = time.perf_counter() - t0
        tokens = sum(overhead + count(t) for s in samples for t in s.texts)
        reasons: dict[str, int] = {}
        for _, _, why in gated:
            reasons[why] = reasons.get(why, 0) + 1
        out[label] = {"pages_asked": len(samples), "pages_gated": reasons, "prompt_tokens": tokens,
                      "plan_seconds": round(seconds, 3)}
    base, gate = out["baseline (no gate)"], out["docsynth (gate)"]
    pages = base["pages_asked"]
    return {"corpus": name, "inputs": str(inputs), "pages": pages, **out,
            "tokens_saved_share": round(1 - gate["prompt_tokens"] / base["prompt_tokens"], 3) if pages else None,
            "token_ratio": round(gate["prompt_tokens"] / base["prompt_tokens"], 3) if pages else None,
            "gate_ms_per_page": round(1000 * max(0.0, gate["plan_seconds"] - base["plan_seconds"]) / pages, 3)
            if pages else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", action="append", help="samples, r-manuals, or a folder of PDFs (repeatable)")
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "quickstart-instruct.yaml")
    ap.add_argument("--work", type=Path, help="where the ingested pages are kept (default: a temporary folder)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    recipe, _ = load_recipe(args.recipe)
    count, how = counter(recipe)
    corpora = args.corpus or ["samples", "r-manuals"]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        results = []
        for c in corpora:
            path = ROOT / "sample_pdfs" if c == "samples" else r_manuals() if c == "r-manuals" else Path(c)
            results.append(measure(Path(c).name, path, recipe, work, count))
    if args.json:
        print(json.dumps({"tokens": how, "results": results}, indent=1))
        return
    print(f"tokens counted with {how}; prompt per page: {args.recipe.name}'s first template")
    print(f"{'corpus':<12} {'pages':>6} {'gated':>6} {'tokens (no gate)':>17} {'tokens (gate)':>14} {'ratio':>6} "
          f"{'saved':>6} {'ms/page':>8}  reasons")
    for r in results:
        g = r["docsynth (gate)"]
        print(f"{r['corpus']:<12} {r['pages']:>6} {sum(g['pages_gated'].values()):>6} "
              f"{r['baseline (no gate)']['prompt_tokens']:>17,} {g['prompt_tokens']:>14,} {r['token_ratio']:>6} "
              f"{r['tokens_saved_share']:>6.1%} {r['gate_ms_per_page']:>8}  {g['pages_gated']}")


if __name__ == "__main__":
    main()
