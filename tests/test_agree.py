"""The round-trip agreement rules (docsynth.core.agree), as a table: each row is a generator's
answer, the verifier's re-answer, whether they agree, and by which rule."""

from __future__ import annotations

import pytest

from docsynth.core.agree import agreement, quantities, units

CASES = [
    # answer, re-answer, agree, how
    ("17.1 million pounds", "81.2 million pounds", False, "numbers"),  # F1 0.67: words alone would accept it
    ("12 March 2024", "March 12, 2024", True, "numbers"),
    ("3 March 2024", "2024-03-03", True, "numbers"),
    ("the 12th of March 2024", "12 March 2024", True, "numbers"),
    ("12 March 2024", "12 March 2023", False, "numbers"),
    ("$118.6 million", "118.6 million pounds", False, "currency or unit"),  # decided: an amount has a currency
    ("118.6 million", "$118.6 million", True, "exact"),  # named by one side only: no conflict
    ("4.2 million euros", "€4,200,000", True, "numbers"),
    ("4.2m", "4.2 million", True, "numbers"),
    ("1,101", "1,101 thousand euros in Q3 2023", True, "containment"),  # a scale named by one side only
    ("4.2", "4.2 million", True, "containment"),
    ("17.1", "81.2 million", False, "numbers"),
    ("4,200", "4.2 thousand", True, "numbers"),  # the same value
    ("25%", "25 percent", True, "containment"),
    ("48,64 euros", "48.64 EUR", True, "numbers"),  # a decimal comma: 1 or 2 digits after it
    ("48,64 euros", "4,864 euros", False, "numbers"),  # 3 digits after it: thousands
    ("25%", "25 km", False, "currency or unit"),
    ("81.2 million pounds", "The operating expenditure was 81.2 million pounds in 2023.", True, "containment"),
    ("12 February 2023", "PO-4471", False, "numbers"),  # the order number asked, a date given
    ("Ines Duarte", "The chair was Ines Duarte.", True, "containment"),
    ("Ines Duarte", "ines duarte", True, "exact"),
    ("Harbour Board of Lisbon", "the Lisbon Harbour Board", True, "f1"),
    ("Ines Duarte", "Paulo Costa", False, "differ"),
    ("Yes", "No", False, "differ"),
    ("81.2 million", "Not stated in the document.", False, "no answer"),
    ("The budget", "", False, "no answer"),
    ("The budget was approved", "The board approved the 2024 budget", True, "f1"),  # a number added, not changed
]


@pytest.mark.parametrize("answer,reanswer,agree,how", CASES)
def test_the_agreement_table(answer, reanswer, agree, how):
    got = agreement(answer, reanswer)
    assert (got.agree, got.how) == (agree, how), got
    assert got.reason


def test_quantities_read_values_and_days_and_units_are_named():
    assert quantities("4,200,000 and 4.2 million on 3 March 2024") == {"4200000", "2024-03-03"}
    assert quantities("no figures here") == set()
    assert units("$5 and 5 euros, 10%") == {"USD", "EUR", "%"}
    assert units("the mainstream") == set()  # a unit inside a word is no unit


def test_the_f1_threshold_is_the_callers():
    assert agreement("Harbour Board of Lisbon", "Lisbon port authority board", min_f1=0.3).agree
    assert not agreement("Harbour Board of Lisbon", "Lisbon port authority board", min_f1=0.9).agree
