"""The judge's reply read back, and its regex: what a weak model's reply may look like."""

from __future__ import annotations

import json
import re

import pytest

from docsynth.llm.parse import ParseError
from docsynth.verify.judge import MAX_REASON_CHARS, parse_ratings, ratings_regex

ITEM = {"reason": "1. the page gives 4.2 million euros", "relevance": 5, "correctness": 4, "formatting": 5}


def test_a_reply_is_read_in_order_its_numbers_stripped():
    second = {**ITEM, "reason": "2. not on the page", "correctness": 1}
    (a, b) = parse_ratings("Here you are:\n```json\n" + json.dumps({"ratings": [ITEM, second]}) + "\n```", 2)
    assert a.reason == "the page gives 4.2 million euros" and a.scores == {"relevance": 5, "correctness": 4,
                                                                           "formatting": 5}
    assert b.scores["correctness"] == 1 and b.reason == "not on the page"
    (c,) = parse_ratings(json.dumps([{**ITEM, "relevance": 3.0}]), 1)  # a bare list; 3.0 is 3
    assert c.scores["relevance"] == 3


@pytest.mark.parametrize("reply,why", [
    (json.dumps({"ratings": [ITEM]}), "1 ratings for 2 pairs"),
    (json.dumps({"ratings": [ITEM, {**ITEM, "correctness": 6}]}), "correctness is 6"),
    (json.dumps({"ratings": [ITEM, {**ITEM, "formatting": True}]}), "formatting is True"),
    (json.dumps({"ratings": [ITEM, {**ITEM, "relevance": 2.5}]}), "relevance is 2.5"),
    (json.dumps({"ratings": [ITEM, {k: v for k, v in ITEM.items() if k != "relevance"}]}), "relevance is None"),
    (json.dumps({"ratings": [ITEM, "fine"]}), "rating 2 is not an object"),
    ("They all look right to me.", "no JSON list of ratings"),
])
def test_a_reply_that_cannot_be_trusted_is_refused_with_the_reason(reply, why):
    with pytest.raises(ParseError, match=re.escape(why)):
        parse_ratings(reply, 2)


def test_the_regex_takes_numbered_reasons_first_and_scores_1_to_5_only():
    rx = re.compile(ratings_regex(2))
    good = '{"ratings": [{"reason": "1. yes", "relevance": 5, "correctness": 4, "formatting": 5}, ' \
           '{"reason": "2. no", "relevance": 1, "correctness": 1, "formatting": 3}]}'
    assert rx.fullmatch(good) and [r.reason for r in parse_ratings(good, 2)] == ["yes", "no"]
    assert not rx.fullmatch(good.replace('"correctness": 4', '"correctness": 6'))
    assert not rx.fullmatch(good.replace('"2. no"', '"no"'))  # unnumbered
    assert not rx.fullmatch(good.replace('"relevance": 5, "correctness": 4', '"correctness": 4, "relevance": 5'))
    assert not rx.fullmatch(good.replace('"1. yes"', '"1. ' + "x" * (MAX_REASON_CHARS + 1) + '"'))


def test_the_visual_judge_needs_all_five_axes():
    from docsynth.core.records import RATED_AXES

    five = {**ITEM, "visual_dependency": 2, "image_correspondence": 5}
    (r,) = parse_ratings(json.dumps([five]), 1, RATED_AXES)
    assert r.scores == {"relevance": 5, "correctness": 4, "formatting": 5, "visual_dependency": 2,
                        "image_correspondence": 5}
    with pytest.raises(ParseError, match="visual_dependency is None"):
        parse_ratings(json.dumps([ITEM]), 1, RATED_AXES)
    rx = re.compile(ratings_regex(1, RATED_AXES))
    assert rx.fullmatch('{"ratings": [{"reason": "1. a stamp", "relevance": 5, "correctness": 4, "formatting": 5, '
                        '"visual_dependency": 2, "image_correspondence": 5}]}')
    assert not rx.fullmatch(json.dumps({"ratings": [ITEM]}))
