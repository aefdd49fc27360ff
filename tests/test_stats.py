"""Statistics on a dataset whose distributions are known by construction, through the library,
the CLI and the cards that docsynth mix writes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from docsynth.mixing.mixer import run_mix
from docsynth.config.mixture import Mixture
from docsynth.dataset.stats import dataset_stats, image_size, load_tokenizer
from tests.dataset.mixsources import picture
from tests.cli import invoke


def word_tokenizer(tmp_path: Path) -> Path:
    """A word-level tokenizer: one token per whitespace-separated word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "question": 1, "?": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    return tmp_path / "tok"


def test_known_counts_shares_and_distributions(known, tmp_path):
    s = dataset_stats(known, load_tokenizer(str(word_tokenizer(tmp_path))))
    assert (s.samples, s.images, s.pairs) == (20, 10 + 12 + 4, 10 + 18 + 8)
    assert s.sources == {"alpha": 10, "beta": 6, "gamma": 4}
    assert s.turns == {1: 10, 2: 4, 3: 6} and s.images_per_sample == {1: 14, 2: 6}
    q = dict(zip(s.question_chars.labels(), s.question_chars.counts))
    assert q["8-15"] == 36 and s.question_chars.mean == 10
    a = dict(zip(s.answer_chars.labels(), s.answer_chars.counts))
    assert a["0-7"] == 18 and a["32-63"] == 18 and (s.answer_chars.min, s.answer_chars.max) == (5, 40)
    side = dict(zip(s.image_side.labels(), s.image_side.counts))
    assert side["256-511"] == 10 and side["768-1023"] == 12 and side["2048-3071"] == 4 and s.unreadable_images == 0
    assert s.tokens == 36 * 2 + 36  # "question ?" is 2 words, every answer 1


def test_image_sizes_from_headers(monkeypatch):
    assert image_size(picture(7, 9, "WEBP")) == (7, 9)  # through PIL
    assert image_size(b"junk") is None
    from PIL import Image
    monkeypatch.setattr(Image, "open", lambda *a: pytest.fail("JPEG and PNG sizes come from their headers"))
    for data in (picture(123, 45, "PNG"), picture(640, 480, "JPEG")):
        size = image_size(data)
        assert size in ((123, 45), (640, 480))
        assert image_size(memoryview(pa.py_buffer(data))) == size  # pyarrow's buffers: signed bytes


def test_cli_stats_prints_histograms_and_json(known):
    res = invoke("stats", str(known))
    assert res.returncode == 0, res.stderr
    for word in ("20 samples, 26 images, 36 QA pairs", "alpha", "50.0%", "question length", "image size", "█"):
        assert word in res.stdout, word
    res = invoke("stats", str(known), "--json")
    assert json.loads(res.stdout)["sources"] == {"alpha": 10, "beta": 6, "gamma": 4}
    res = invoke("stats", str(known / "data"))
    assert res.returncode == 1 and "holds no dataset shards" in res.stderr


def test_the_mixture_card_carries_the_same_figures(known, tmp_path):
    run_mix(Mixture.model_validate({"sources": [{"name": "k", "path": str(known), "repeat": 1}]}), tmp_path / "mix")
    card = (tmp_path / "mix" / "README.md").read_text()
    assert "## Statistics" in card and "20 samples, 26 images, 36 QA pairs." in card
    assert "| alpha | 10 | 50.00% |" in card and "QA turns per sample: 1: 10, 2: 4, 3: 6" in card
