"""generate.vision (issue 20) without an engine: page images fitted to the pixel budget, placed in
the chat as image parts, counted in the token budget; the openai backend's data URIs checked by
a stand-in server that decodes them and compares them with the sample's page images; and a
model without vision refused before any work. The real engine runs it in test_tiny_vlm.py."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from docsynth.core.errors import DocsynthError
from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_generate, run_ingest
from docsynth.llm.backends import ChatRequest
from docsynth.llm.images import PixelEstimate, fit_image
from docsynth.llm.prompts import load_templates
from docsynth.generate.samples import Prompter, Sample
from docsynth.llm.prompts import NO_TEXT
from tests.conftest import ROOT, text_pdf
from tests.generate.conftest import Scripted, good_pairs, scripted_session
from tests.generate.test_openai_backend import StandIn, ok

BUDGET = 40_000  # pixels: a 150-dpi page (about 1.9 million) is far over it


def vision_recipe(paths, **generate) -> Recipe:
    return Recipe.model_validate({
        "inputs": {"paths": [str(p) for p in paths], "docs_per_task": 2},
        "ingest": {"workers": 1, "ocr": {"mode": "never"}},
        "generate": {"guided_json": False, "vision": True, "max_image_pixels": BUDGET, "max_pages_per_sample": 2,
                     "templates": ["specific_facts", "charts_figures"], **generate}})


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("docs")
    text_pdf(d / "two.pdf", ["Invoice INV-7 dated 1 May 2024, total 99.50 EUR.", "Page two: paid on 3 May 2024."])
    text_pdf(d / "one.pdf", ["Chart of sales by quarter: Q1 10, Q2 14, Q3 9 (thousand units)."])
    out = tmp_path_factory.mktemp("ingested")
    run_ingest(vision_recipe([d]), d, out)
    return d, out


def jpeg(w: int, h: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(b, "JPEG")
    return b.getvalue()


def decoded(part: dict) -> Image.Image:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_an_image_over_the_budget_is_resized_with_its_aspect_and_one_within_it_is_sent_as_stored():
    big = fit_image(jpeg(1275, 1650), BUDGET)
    assert big.width * big.height <= BUDGET and abs(big.width / big.height - 1275 / 1650) < 0.01
    assert Image.open(io.BytesIO(big.data)).size == (big.width, big.height)
    small = jpeg(100, 120)
    assert fit_image(small, BUDGET).data == small
    with pytest.raises(ValueError, match="unreadable page image"):
        fit_image(b"not an image", BUDGET)


def test_images_stand_where_the_template_puts_them_and_open_a_text_template_and_text_never_places_one():
    ts = load_templates(ROOT / "prompts")
    img = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AA=="}}
    visual = ts["charts_figures"].render_parts([img, img], document="costs {{ images }} here", num_pairs=2)
    parts = visual[0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert "costs {{ images }} here" in parts[2]["text"]  # document text is data
    plain = ts["specific_facts"].render_parts([img], document="d", num_pairs=2)
    assert [p["type"] for p in plain[0]["content"]] == ["image_url", "text"]


def test_a_visual_template_without_vision_and_images_over_the_context_are_recipe_errors():
    ts = load_templates(ROOT / "prompts")
    off = vision_recipe([], vision=False).generate
    with pytest.raises(DocsynthError, match="charts_figures.*generate.vision: true"):
        Prompter(off, ts, scripted_session().tokens, 4096).check()
    on = vision_recipe([], max_image_pixels=4_000_000).generate
    with pytest.raises(DocsynthError, match="lower generate.max_image_pixels"):
        Prompter(on, ts, scripted_session().tokens, 4096, images=PixelEstimate(784)).check()


def test_image_tokens_come_out_of_the_text_budget():
    ts = load_templates(ROOT / "prompts")
    cfg = vision_recipe([], templates=["specific_facts"]).generate
    text = "word " * 3000

    def fitted(images):
        s = Sample("s", "d", "src", [0], [text], "specific_facts", images=images)
        Prompter(cfg, ts, scripted_session().tokens, 2048, images=PixelEstimate(100)).request(s, 1)
        return len(s.text)

    page = fit_image(jpeg(1275, 1650), BUDGET)
    assert fitted([page]) < fitted([]) - 100 * 3  # 400 image tokens of 3 characters each, about


def test_the_stage_sends_each_samples_pages_within_the_budget_as_image_parts(pages, tmp_path):
    d, ingested = pages
    backend = Scripted(good_pairs)
    session = scripted_session()
    session.backend = backend
    s = run_generate(vision_recipe([d]), d, ingested, tmp_path, session=session)
    assert s.samples == 2 and s.samples_ok == 2
    requests: list[ChatRequest] = [r for call in backend.calls for r in call]
    shapes = sorted(sum(p["type"] == "image_url" for p in r.messages[0]["content"]) for r in requests)
    assert shapes == [1, 2]  # a sample's page images, one per page
    for r in requests:
        for p in r.messages[0]["content"]:
            if p["type"] == "image_url":
                w, h = decoded(p).size
                assert w * h <= BUDGET
    rows = [r for f in sorted((tmp_path / "candidates").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted(len(r["images"]) for r in rows) == [1, 2]  # the dataset keeps the pages as ingested
    assert Image.open(io.BytesIO(rows[0]["images"][0])).size[0] > 500


def test_text_none_sends_the_images_alone(pages, tmp_path):
    d, ingested = pages
    backend = Scripted(good_pairs)
    session = scripted_session()
    session.backend = backend
    run_generate(vision_recipe([d], text="none"), d, ingested, tmp_path, session=session)
    texts = [p["text"] for call in backend.calls for r in call for p in r.messages[0]["content"] if p["type"] == "text"]
    assert texts and all(NO_TEXT in t and "INV-7" not in t for t in texts)


def test_the_openai_backend_sends_data_uris_of_the_sample_pages(pages, tmp_path):
    """A stand-in server decodes every image part and compares it with the page images of the
    ingest output, fitted to the budget: the same pixels, in page order."""
    d, ingested = pages
    expected = {}
    for f in sorted((ingested / "pages").glob("*.parquet")):
        for r in pq.read_table(f, columns=["doc_id", "page", "image"]).to_pylist():
            expected[(r["doc_id"], r["page"])] = fit_image(r["image"], BUDGET)
    seen = []

    def script(n, body):
        content = body["messages"][0]["content"]
        if isinstance(content, list):
            seen.append([decoded(p) for p in content if p["type"] == "image_url"])
        return ok(json.dumps([{"question": "What is the total?", "answer": "99.50 EUR"}]))

    s = StandIn(script)
    try:
        r = vision_recipe([d], backend="openai", openai={"base_url": s.url, "max_retries": 0}, context_tokens=4096)
        run_generate(r, d, ingested, tmp_path)
    finally:
        s.close()
    probe, *asked = seen  # the first request is the vision check, with one small image
    assert len(asked) == 2 and sorted(map(len, asked)) == [1, 2]
    assert len(probe) == 1 and probe[0].size == (32, 32)
    got = sorted(tuple(im.tobytes() for im in imgs) for imgs in asked)
    want_by_doc: dict[str, list] = {}
    for (doc, _page), im in sorted(expected.items()):
        want_by_doc.setdefault(doc, []).append(Image.open(io.BytesIO(im.data)).convert("RGB").tobytes())
    assert got == sorted(tuple(v) for v in want_by_doc.values())


def test_a_server_whose_model_refuses_images_is_one_clear_error_before_any_work(pages, tmp_path):
    d, ingested = pages

    def script(n, body):
        return 400, {"error": {"message": "model 'tiny' is not a multimodal model"}}, {}

    s = StandIn(script)
    try:
        r = vision_recipe([d], backend="openai", openai={"base_url": s.url, "max_retries": 0}, context_tokens=4096)
        with pytest.raises(DocsynthError, match="refuses an image for .*not a multimodal model.*vision: false"):
            run_generate(r, d, ingested, tmp_path)
        assert len(s.bodies) == 1 and not (tmp_path / "candidates").exists()
    finally:
        s.close()
