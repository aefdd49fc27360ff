"""Synthetic document pages of many layouts, for decontamination tests and bench/decontam.py:
a seeded generator, so "distinct pages" are distinct by construction (each page has its own
words, numbers and layout), and the same seed gives the same pages."""

from __future__ import annotations

import random

import pymupdf

_SYLLABLES = "ka lo mi ne ru sa te vo di pa ge bu zo fi ha ja ce wy xo qu tra ble mon sel dor vin".split()


def word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))


def _line(rng: random.Random, n: int) -> str:
    return " ".join(word(rng) for _ in range(n))


def _text(p, rng, x0, x1, y, y1, size):
    while y < y1:
        for _ in range(rng.randint(2, 9)):
            if y >= y1:
                break
            p.insert_text((x0, y), _line(rng, max(2, int((x1 - x0) / (size * 4.2)) - rng.randint(0, 3))), fontsize=size)
            y += size * rng.uniform(1.25, 1.6)
        y += rng.uniform(6, 30)
        if rng.random() < 0.3:
            p.insert_text((x0, y), _line(rng, rng.randint(2, 6)).title(), fontsize=size + rng.randint(2, 6))
            y += size * 2
    return y


def _table(p, rng, x0, x1, y, y1):
    cols, size = rng.randint(2, 7), rng.choice([7, 8, 9, 10])
    rows = rng.randint(4, 30)
    top = y
    for _ in range(rows):
        if y >= y1:
            break
        for c in range(cols):
            cell = str(rng.randint(1, 10 ** rng.randint(1, 6))) if c else word(rng)
            p.insert_text((x0 + 4 + c * (x1 - x0) / cols, y), cell, fontsize=size)
        y += size * 1.8
    if rng.random() < 0.7:
        p.draw_rect(pymupdf.Rect(x0, top - size * 1.4, x1, y), color=(0, 0, 0), width=rng.choice([0.5, 1, 1.5]))
    return y + 20


def _form(p, rng, x0, x1, y, y1):
    while y < y1 - 30:
        w = rng.uniform(80, x1 - x0)
        p.insert_text((x0, y), _line(rng, rng.randint(1, 3)) + ":", fontsize=9)
        p.draw_rect(pymupdf.Rect(x0 + 90, y - 11, min(x1, x0 + 90 + w), y + 5), color=(0, 0, 0), width=0.6)
        y += rng.uniform(22, 40)
    return y


def make_page(doc, rng: random.Random):
    """One page of a random layout: text columns, tables, forms, figures, big titles."""
    w, h = rng.choice([(595, 842), (612, 792), (842, 595)])
    p = doc.new_page(width=w, height=h)
    m = rng.uniform(30, 90)
    y = m + rng.uniform(0, 60)
    if rng.random() < 0.6:
        p.insert_text((m, y), _line(rng, rng.randint(2, 7)).title(), fontsize=rng.randint(14, 28))
        y += 40
    layout = rng.choice(["text", "columns", "table", "form", "mixed", "figure"])
    if layout == "text":
        _text(p, rng, m, w - m, y, h - m, rng.choice([8, 9, 10, 11, 12]))
    elif layout == "columns":
        gap, k = 18, rng.choice([2, 3])
        cw = (w - 2 * m - gap * (k - 1)) / k
        for c in range(k):
            _text(p, rng, m + c * (cw + gap), m + c * (cw + gap) + cw, y, h - m - rng.uniform(0, 200), rng.choice([8, 9]))
    elif layout == "table":
        y = _text(p, rng, m, w - m, y, y + rng.uniform(20, 200), 10)
        _table(p, rng, m, w - m, y, h - m)
    elif layout == "form":
        _form(p, rng, m, w - m, y, h - m)
    elif layout == "figure":
        fh = rng.uniform(120, 400)
        r = pymupdf.Rect(m + rng.uniform(0, 100), y, w - m - rng.uniform(0, 100), y + fh)
        p.draw_rect(r, color=(0, 0, 0), fill=(rng.random(), rng.random(), rng.random()), width=1)
        for _ in range(rng.randint(3, 12)):  # bars
            x = rng.uniform(r.x0, r.x1 - 10)
            p.draw_rect(pymupdf.Rect(x, r.y1 - rng.uniform(10, fh), x + rng.uniform(5, 30), r.y1), fill=(rng.random(),) * 3)
        _text(p, rng, m, w - m, y + fh + 30, h - m, 10)
    else:
        while y < h - m - 60:
            y = (_table if rng.random() < 0.4 else lambda *a: _text(*a, rng.choice([9, 10])))(
                p, rng, m, w - m, y, min(h - m, y + rng.uniform(80, 300)))
    return p


def synthetic_pdf(n: int, seed: int = 0) -> bytes:
    """A PDF of n distinct pages."""
    rng = random.Random(seed)
    doc = pymupdf.open()
    for _ in range(n):
        make_page(doc, rng)
    return doc.tobytes()
