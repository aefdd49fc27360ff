"""The QA parser over a table of well-formed and malformed model outputs."""

from __future__ import annotations

import json

import pytest

from docsynth.llm.parse import ParseError, parse_qa, qa_json_schema

GOOD = [{"question": "What is the invoice number?", "answer": "INV-2024-00871"},
        {"question": "When is payment due?", "answer": "13 November 2024"}]
GOOD_PAIRS = [(p["question"], p["answer"]) for p in GOOD]


@pytest.mark.parametrize("text", [
    json.dumps(GOOD),
    "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
    "```\n" + json.dumps(GOOD) + "\n```\nHope this helps!",
    "Here are the pairs:\n" + json.dumps(GOOD) + "\nLet me know if you need more.",
    json.dumps({"pairs": GOOD}),
    json.dumps({"qa_pairs": GOOD}),
    json.dumps([{"Question": g["question"], "Answer": g["answer"]} for g in GOOD]),
    json.dumps([{"q": g["question"], "a": g["answer"], "page": 1} for g in GOOD]),
    json.dumps(GOOD).replace(", ", ",\n  "),
    # raw newline and tab inside strings: what guided decoding on a small model emits
    '[{"question": "What is the invoice\nnumber?", "answer": "INV-2024-00871\t"}]',
    "Q: What is the invoice number?\nA: INV-2024-00871\n\nQ: When is payment due?\nA: 13 November 2024\n",
    "1. Question: What is the invoice number?\n   Answer: INV-2024-00871\n2. Question: When is payment due?\n   Answer: 13 November 2024",
], ids=["plain", "fenced", "fence-then-prose", "prose-around", "wrapper-pairs", "wrapper-qa_pairs",
        "capitalised-keys", "short-keys-extra-field", "newlines-between", "raw-control-char",
        "q-a-lines", "numbered-lines"])
def test_tolerated_shapes(text):
    pairs = parse_qa(text)
    assert len(pairs) >= 1
    got = [(p.question.replace("\n", " "), p.answer) for p in pairs]
    assert got[0] == GOOD_PAIRS[0] or got[0][0].startswith("What is the invoice")


def test_a_single_object_is_one_pair():
    (pair,) = parse_qa(json.dumps(GOOD[0]))
    assert (pair.question, pair.answer) == GOOD_PAIRS[0]


def test_numbers_are_answers_and_whitespace_is_trimmed():
    (pair,) = parse_qa('[{"question": "  How many offices?  ", "answer": 4}]')
    assert (pair.question, pair.answer) == ("How many offices?", "4")


def test_invalid_items_are_dropped_when_valid_ones_remain():
    pairs = parse_qa(json.dumps([GOOD[0], {"question": "No answer here"}, "stray", GOOD[1]]))
    assert [(p.question, p.answer) for p in pairs] == GOOD_PAIRS


@pytest.mark.parametrize("text, reason", [
    ("", "empty completion"),
    ("   \n", "empty completion"),
    ("[]", "empty QA list"),
    ('[{"question": "Q?", "answer": ""}]', "no valid QA pair"),
    ('[{"question": "", "answer": "x"}, {"answer": "y"}]', "no valid QA pair"),
    ('[{"question": "What?", "answer": null}]', "no valid QA pair"),
    ('[{"question": "What?", "answer": true}]', "no valid QA pair"),
    ('"just a string"', "JSON is a str, not a list of QA pairs"),
    ("[1, 2, 3]", "no valid QA pair: item 0 is a int"),
    ('[{"question": "What is the total?", "answer": "901', "malformed JSON"),
    ('[{"question": "What is the total?" "answer": "901.32"}]', "malformed JSON"),
    ("[" + " " * 300, "malformed JSON"),
    ("I cannot help with that request.", "no JSON and no 'Q:'/'A:' lines"),
    ("Q: What is the total?\n", "no JSON and no 'Q:'/'A:' lines"),
    ('{"error": "context too long"}', "no valid QA pair"),
], ids=lambda x: x[:30] if isinstance(x, str) else x)
def test_malformed_outputs_are_parse_errors_with_reasons(text, reason):
    with pytest.raises(ParseError) as e:
        parse_qa(text)
    assert str(e.value).startswith(reason)


def test_schema_bounds_items_and_strings():
    s = qa_json_schema(max_pairs=4, max_chars=200)
    assert s["maxItems"] == 4 and s["items"]["properties"]["answer"]["maxLength"] == 200
    assert s["items"]["required"] == ["question", "answer"]
