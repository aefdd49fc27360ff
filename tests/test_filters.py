"""Filters as tables: input -> kept, or dropped with its reason, including the cases that look
close to a drop and must be kept."""

from __future__ import annotations

import pytest

from docsynth.core.records import reason_kind
from docsynth.write.filters import Pair, apply_filters, build_filters
from docsynth.config.recipe import (CodeFilter, GroundedFilter, LanguageFilter, LengthFilter, NearDuplicatesFilter,
                             UnanswerableFilter, parse_recipe)

TEXT = ("Riverside Water Authority - Annual Report 2023. The Authority supplies drinking water to 412,000 "
        "residents in nine municipalities. Revenue rose 4.1 percent to 118.6 million pounds. Chair Ruth Okafor "
        "thanked the 96 staff. The board approved the code of conduct on 18 March 2024.")


def verdict(f, answer: str, question: str = "What does the document say?", kept=()):
    v = f(Pair(question, answer, TEXT), list(kept))
    return "kept" if v is True else v[1]


CODE = [
    ("```python\nprint(1)\n```", "code: code fence in the answer"),
    ("def total(items):\n    return sum(items)", "code: function or class definition in the answer"),
    ("class Invoice:", "code: function or class definition in the answer"),
    ("function add(a, b) { return a + b }", "code: function or class definition in the answer"),
    ("(a, b) => a + b", "code: function or class definition in the answer"),
    ("import numpy as np", "code: import or include in the answer"),
    ("#include <stdio.h>", "code: import or include in the answer"),
    ("x = compute(y);", "code: statement ending in a semicolon in the answer"),
    ("Call console.log(total) to print it", "code: method call in the answer"),
    ('<div class="total">42</div>', "code: markup in the answer"),
    ("$ ls -la /var/log", "code: shell command in the answer"),
    ("Run pip install docsynth first", "code: shell command in the answer"),
    ("cat file.txt | grep total", "code: shell command in the answer"),
    ("SELECT name FROM staff WHERE id = 3", "code: SQL in the answer"),
    ("{a: [1, 2]; b: {c: 3}; e: $f & g}", "code: code punctuation in the answer"),
    # prose about code, and ordinary punctuation: kept
    ("The board approved the code of conduct on 18 March 2024.", "kept"),
    ("Python and Java are named as the languages of the project.", "kept"),
    ("The function of the board is to oversee the budget.", "kept"),
    ("Class A shares carry two votes.", "kept"),
    ("The total (including VAT) is EUR 1,200; payment is due in 30 days.", "kept"),
    ("Revenue rose 4.1% (from 113.9 to 118.6 million pounds).", "kept"),
    ("Use the import licence number IL-2024-77.", "kept"),
    ("The e.g. U.S. figures are in Fig. 2(a).", "kept"),
    ("Temperatures below <5 degrees are rare.", "kept"),
    ("The select committee met from May to June.", "kept"),
]


@pytest.mark.parametrize("answer,expected", CODE)
def test_code(answer, expected):
    assert verdict(build_filters([CodeFilter()])[0], answer) == expected


def test_code_in_the_question_too():
    f = build_filters([CodeFilter()])[0]
    assert verdict(f, "42", question="What does SELECT id FROM staff return?") == "code: SQL in the question"


UNANSWERABLE = [
    ("Unanswerable.", "unanswerable: 'Unanswerable'"),
    ("This is not mentioned in the document.", "unanswerable: 'not mentioned in the document'"),
    ("The date is not explicitly stated in the text.", "unanswerable: 'not explicitly stated in the text'"),
    ("It cannot be determined from the information provided.", "unanswerable: 'cannot be determined'"),
    ("The document does not specify the amount.", "unanswerable: 'does not specify'"),
    ("There is no information about the chair.", "unanswerable: 'no information'"),
    ("Not enough information to say.", "unanswerable: 'Not enough information'"),
    ("It is impossible to tell.", "unanswerable: 'impossible to tell'"),
    ("Unknown", "unanswerable: 'Unknown'"),
    ("N/A", "unanswerable: 'N/A'"),
    ("I don't know.", "unanswerable: 'I don't know'"),
    ("Ce n'est pas précisé : non mentionné dans le document.", "unanswerable: 'non mentionné'"),
    ("Das ist nicht angegeben.", "unanswerable: 'nicht angegeben'"),
    # negations and words that are part of real answers: kept
    ("No, the invoice was not paid before 3 May.", "kept"),
    ("The meeting was not held in 2020.", "kept"),
    ("The product is not available in blue.", "kept"),
    ("The unknown soldier memorial in the park.", "kept"),
    ("Ruth Okafor", "kept"),
    ("None of the nine municipalities raised prices.", "kept"),
]


@pytest.mark.parametrize("answer,expected", UNANSWERABLE)
def test_unanswerable(answer, expected):
    assert verdict(build_filters([UnanswerableFilter()])[0], answer) == expected


def test_unanswerable_extra_phrases():
    f = build_filters([UnanswerableFilter(extra_phrases=["beyond the scope"])])[0]
    assert verdict(f, "That is beyond the scope of the page.") == "unanswerable: 'beyond the scope'"


LENGTH = [
    ("What is it?", "42", "kept"),
    ("Why?", "42", "length: question shorter than 8 characters"),
    ("What is the revenue?", "", "length: answer shorter than 1 characters"),
    ("What is the revenue?", "x" * 401, "length: answer longer than 400 characters"),
    ("W" * 301, "42", "length: question longer than 300 characters"),
]


@pytest.mark.parametrize("question,answer,expected", LENGTH)
def test_length(question, answer, expected):
    assert verdict(build_filters([LengthFilter()])[0], answer, question) == expected


NEAR = [
    ("What is the revenue?", "near_duplicates: same question as an earlier pair"),
    ("what is the revenue", "near_duplicates: same question as an earlier pair"),
    ("What is the revenues?", "near_duplicates: question 0.97 similar to an earlier one"),
    ("What was the revenue?", "near_duplicates: question 0.92 similar to an earlier one"),
    ("What is the revenue in 2022?", "kept"),
    ("Who chairs the Authority?", "kept"),
]


@pytest.mark.parametrize("question,expected", NEAR)
def test_near_duplicates(question, expected):
    f = build_filters([NearDuplicatesFilter()])[0]
    kept = [Pair("What is the revenue?", "118.6 million pounds", TEXT)]
    assert verdict(f, "x", question, kept) == expected


LANGUAGE = [
    ("What is the invoice number?", "INV-2024-00871", "kept"),
    ("Quel est le montant de la facture ?", "486,40 euros", "language: fr not in en"),
    ("Wie hoch ist das Budget der Bibliothek?", "2,4 Millionen Euro", "language: de not in en"),
    ("Total?", "42", "kept"),  # too short to tell
]


@pytest.mark.parametrize("question,answer,expected", LANGUAGE)
def test_language(question, answer, expected):
    assert verdict(build_filters([LanguageFilter(allowed=["en"])])[0], answer, question) == expected


def test_language_allows_several():
    f = build_filters([LanguageFilter(allowed=["en", "fr"])])[0]
    assert verdict(f, "486,40 euros", "Quel est le montant de la facture ?") == "kept"


GROUNDED = [
    ("412,000 residents", "kept"),  # verbatim
    ("412000 residents", "kept"),  # normalised: punctuation does not matter
    ("Ruth Okafor", "kept"),
    ("The Authority supplies water to nine municipalities.", "kept"),  # its content words are in the text
    ("Yes.", "kept"),  # a bare yes/no has nothing to look for
    ("Yes, on 18 March 2024.", "kept"),
    ("Helen Park", "grounded: answer not supported by the text (score 0.53)"),
    ("250,000 residents", "grounded: answer not supported by the text (score 0.00)"),  # numbers are strict
    ("412,000 households", "grounded: answer not supported by the text (score 0.67)"),
    ("The Authority was founded in 1905 by Lord Smith.", "grounded: answer not supported by the text (score 0.00)"),
    ("No, in 1999.", "grounded: answer not supported by the text (score 0.00)"),
]


@pytest.mark.parametrize("answer,expected", GROUNDED)
def test_grounded(answer, expected):
    assert verdict(build_filters([GroundedFilter()])[0], answer) == expected


def test_grounded_passes_the_pairs_of_templates_that_read_the_image():
    """A value read off a chart need not be in the text layer (generate.vision's visual templates)."""
    f = build_filters([GroundedFilter()])[0]
    assert f(Pair("What is the Q3 bar?", "about 250,000 residents", TEXT, template="charts_figures"), []) is True
    assert f(Pair("What is the Q3 bar?", "about 250,000 residents", TEXT, template="specific_facts"), []) is not True
    strict = build_filters([GroundedFilter(skip_templates=[])])[0]
    assert strict(Pair("What is the Q3 bar?", "about 250,000 residents", TEXT, template="charts_figures"), []) is not True


def test_filters_apply_in_order_and_say_which_dropped_each_pair():
    r = parse_recipe({"filters": ["code", "unanswerable", "length", "near_duplicates", "grounded"]})
    pairs = [Pair(q, a, TEXT) for q, a in [
        ("How many residents are supplied?", "412,000 residents"),
        ("How many residents get water?", "print(412000);"),
        ("Who is the chair?", "Not mentioned in the document."),
        ("How many residents are supplied?", "412,000"),
        ("Why?", "Because."),
        ("Who founded it?", "Lord Smith"),
        ("Who chairs the Authority?", "Ruth Okafor"),
    ]]
    kept, dropped = apply_filters(pairs, build_filters(r.filters))
    assert [p.answer for p in kept] == ["412,000 residents", "Ruth Okafor"]
    assert [reason_kind(why) for _, why in dropped] == ["code", "unanswerable", "near_duplicates", "length",
                                                         "grounded"]


def test_recipe_filters_are_validated_with_their_own_keys():
    from docsynth.core.errors import RecipeError

    with pytest.raises(RecipeError, match="filters.0: no filter 'cod'; did you mean 'code'\\? \\(docsynth's: code, "):
        parse_recipe({"filters": ["cod"]})
    with pytest.raises(RecipeError, match="did you mean 'filters.0.length.max_answer_chars'"):
        parse_recipe({"filters": [{"name": "length", "max_answer": 5}]})
    assert [f.name for f in parse_recipe({}).filters] == ["code", "unanswerable", "length", "near_duplicates",
                                                          "grounded", "injection"]
