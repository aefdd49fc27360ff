"""What verification costs, in tokens, as a share of what generation costs: quickstart and docmatix shapes.

    .venv/bin/python bench/verify.py [--recipe recipes/quickstart-instruct.yaml] [--shapes quickstart,docmatix]
                                     [--checks evidence,type,choice] [--judge] [--per-request N] [--json]

For each shape, in one process on one engine (the recipe's model; the verifier shares it):
ingest sample_pdfs/, generate, then verify (docsynth.executors.local, the code `docsynth run`
runs). Generation tokens are the generation requests' prompt + output tokens. Verification
tokens are the checks' requests (verify.checks: the round trip, the choice, the vote; evidence and
type cost none) and with --judge the judge's, prompt + output tokens, counted two ways:

1. the baseline: every prompt token computed, as a verifier that sends the document in a prompt
   of its own pays;
2. docsynth: less the prompt tokens the engine's prefix cache served (vLLM's
   num_cached_tokens): the generation templates and the verify templates all open with the
   same `<document>` block, so the document is computed once.

Shapes: `quickstart` is the recipe as it is (one page per sample); `docmatix` is
recipes/docmatix.yaml's shape on the same model: its five templates, 4 pairs per page, samples
of up to 4 pages. The recipe's generate.strategy applies to both (answer-first: one request per
asked span, the document first). Target (issue 30): the checks at most 40 % of generation on the
docmatix shape.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docsynth.config.recipe import load_recipe  # noqa: E402
from docsynth.executors.local import run_generate, run_ingest, run_verify  # noqa: E402
from docsynth.llm.session import open_session  # noqa: E402


def shape(recipe, name: str, judge: bool):
    docmatix, _ = load_recipe(ROOT / "recipes" / "docmatix.yaml")
    gen = recipe.generate
    if name == "docmatix":
        d = docmatix.generate
        gen = gen.model_copy(update={k: getattr(d, k) for k in ("templates", "pairs_per_page", "max_pages_per_sample",
                                                                "long_documents")})
    return recipe.model_copy(update={"generate": gen, "verify": recipe.verify.model_copy(
        update={"enabled": True, "judge": judge, "backend": None, "model": None, "engine": None})})


def measure(recipe, base: Path, session, work: Path) -> dict:
    run = work / "run"
    run_ingest(recipe, base, run)
    t0 = time.perf_counter()
    g = run_generate(recipe, base, run, run, session=session)
    t1 = time.perf_counter()
    v = run_verify(recipe, base, run, session=session)
    t2 = time.perf_counter()
    gen = g.prompt_tokens + g.output_tokens
    kinds = {k: t for k, t in v.run_tokens.items() if t["requests"]}
    plain = sum(t["prompt"] + t["output"] for t in kinds.values())
    computed = sum(t["prompt"] - t["cached"] + t["output"] for t in kinds.values())
    return {"samples": g.samples_ok, "pairs": v.pairs, "generation_tokens": gen,
            "generation": {"prompt": g.prompt_tokens, "output": g.output_tokens, "seconds": round(t1 - t0, 1)},
            "verification": {**kinds, "seconds": round(t2 - t1, 1)},
            "baseline_share": round(plain / gen, 3) if gen else None,
            "docsynth_share": round(computed / gen, 3) if gen else None,
            "ratio": round(plain / computed, 2) if computed else None,
            **{f"{k}_share": round((t["prompt"] - t["cached"] + t["output"]) / gen, 3) for k, t in kinds.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "quickstart-instruct.yaml")
    ap.add_argument("--shapes", default="quickstart,docmatix")
    ap.add_argument("--judge", action="store_true", help="also run the judge (one more request per sample)")
    ap.add_argument("--per-request", type=int, metavar="N", help="verify.questions_per_request for this run")
    ap.add_argument("--checks", help="verify.checks for this run, comma-separated (default: the recipe's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    recipe, base = load_recipe(args.recipe)
    if args.per_request:
        recipe = recipe.model_copy(update={"verify": recipe.verify.model_copy(
            update={"questions_per_request": args.per_request})})
    if args.checks:
        recipe = recipe.model_copy(update={"verify": recipe.verify.model_copy(update={"checks": args.checks.split(",")})})
    session = open_session(recipe.generate, base)
    report = {"model": recipe.generate.model, "judge": args.judge, "strategy": recipe.generate.strategy,
              "checks": recipe.verify.checks, "shapes": {}}
    try:
        for name in args.shapes.split(","):
            with tempfile.TemporaryDirectory(prefix=f"bench-verify-{name}-") as work:
                report["shapes"][name] = measure(shape(recipe, name, args.judge), base, session, Path(work))
    finally:
        if recipe.generate.backend == "vllm":
            from docsynth.llm.backends.vllm import shutdown_engines

            shutdown_engines()
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"model: {report['model']}  (strategy: {report['strategy']}; checks: {', '.join(report['checks'])}; "
          f"judge: {args.judge})")
    print(f"{'shape':<11} {'samples':>7} {'pairs':>6} {'gen tok':>8} {'baseline':>9} {'docsynth':>9} {'ratio':>6}")
    for name, r in report["shapes"].items():
        print(f"{name:<11} {r['samples']:>7} {r['pairs']:>6} {r['generation_tokens']:>8} "
              f"{r['baseline_share']:>9.0%} {r['docsynth_share']:>9.0%} {r['ratio']:>6}")
    print("shares: verification tokens / generation tokens; docsynth's less the prefix-cache hits. Target (issue 30): docmatix <= 40 %")


if __name__ == "__main__":
    main()
