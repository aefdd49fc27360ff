"""The hand-made part of the labelled set (tests/data/quality/labelled.jsonl): pairs written
by hand from sample_pdfs/, each correct against its page, and from each, wrong variants of
three kinds: the answer of another question on the same page (swapped), the answer with a
number changed (number), and the answer of a question about another document (other page).

    .venv/bin/python tests/data/quality/variants.py   # rewrites the "hand" and "variant" records

The generated pairs in the file (models gemma-3-270m and qwen2.5-coder-1.5b) were labelled by
hand and are left as they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).parent
LABELLED = HERE / "labelled.jsonl"

# (document, page, question, answer): each read off the page by hand.
HAND = [
    ("annual_report.pdf", 0, "How many residents does the Riverside Water Authority supply?", "412,000 residents"),
    ("annual_report.pdf", 0, "When was the report approved by the board?", "18 March 2024"),
    ("annual_report.pdf", 0, "What was the peak daily demand?", "171 million litres, on 11 July"),
    ("annual_report.pdf", 0, "How many kilometres of mains were replaced during the year?", "41 kilometres"),
    ("annual_report.pdf", 0, "To what level did leakage fall?", "15.8 percent of water put into supply"),
    ("annual_report.pdf", 0, "How many customer complaints about supply were there?", "1,874"),
    ("annual_report.pdf", 1, "What was the compliance rate of the water samples?", "99.91 percent"),
    ("annual_report.pdf", 1, "What were the operating costs?", "81.2 million pounds"),
    ("annual_report.pdf", 1, "How much did the ultraviolet treatment stage at Kingsmead cost?", "12.4 million pounds"),
    ("annual_report.pdf", 1, "How much did electricity cost?", "14.9 million pounds"),
    ("annual_report.pdf", 2, "What is the leakage target for 2026?", "below 13 percent"),
    ("annual_report.pdf", 2, "How much of the capital programme will be financed from operating surpluses?",
     "61 million pounds"),
    ("annual_report.pdf", 3, "How many times did the board meet during the year?", "eleven times"),
    ("annual_report.pdf", 3, "Which new board member is a civil engineer?", "Daniel Weiss"),
    ("bericht_de.pdf", 0, "Where does the library plan a new branch?", "in the Weingarten district"),
    ("invoice.pdf", 0, "What is the invoice number?", "INV-2024-00871"),
    ("invoice.pdf", 0, "What is the total due?", "901.32 GBP"),
    ("invoice.pdf", 0, "When is the invoice due?", "13 November 2024"),
    ("invoice.pdf", 0, "What is the purchase order number?", "PO-55190"),
    ("lettre_fr.pdf", 0, "How much will be refunded?", "48,64 euros"),
    ("lettre_fr.pdf", 0, "By when will the refund be paid?", "before 30 September 2024"),
    ("table_report.pdf", 0, "What were the Nordics' total sales for the year?", "5,288 thousand euros"),
    ("table_report.pdf", 0, "Which region grew fastest?", "the Baltics, by 29.4 percent"),
    ("table_report.pdf", 0, "How many sales staff does Central Europe have?", "57"),
    ("two_column_article.pdf", 0, "How many PDF files does the corpus hold?", "41,200"),
    ("two_column_article.pdf", 0, "What accuracy did the model trained on human pairs alone reach?", "61.3"),
    ("two_column_article.pdf", 0, "What share of the pairs did the grounding check drop?", "14.6 percent"),
    ("two_column_article.pdf", 1, "Which grant supported the work?", "grant 2024-117 of the Open Data Programme"),
]


def changed(answer: str) -> str | None:
    """The answer with its first number altered the way a model misreads one (digits moved)."""
    m = re.search(r"\d[\d,.]*\d|\d", answer)
    if not m:
        return None
    digits = m.group()
    core = [c for c in digits if c.isdigit()]
    if len(core) >= 2 and core[0] != core[1]:
        core[0], core[1] = core[1], core[0]
    else:
        core[-1] = str((int(core[-1]) + 3) % 10)
    it = iter(core)
    new = "".join(next(it) if c.isdigit() else c for c in digits)
    return answer[:m.start()] + new + answer[m.end():]


def build(contexts: dict[tuple[str, int], str]) -> list[dict]:
    out = []
    for i, (doc, page, q, a) in enumerate(HAND):
        ctx = contexts[(doc, page)]
        base = {"question": q, "context": ctx, "source": f"{doc} page {page}"}
        out.append({**base, "answer": a, "label": "correct", "model": "hand", "kind": "hand"})
        same = [h for h in HAND if (h[0], h[1]) == (doc, page) and h[2] != q]
        if same:
            out.append({**base, "answer": same[(i + 1) % len(same)][3], "label": "wrong", "model": "variant",
                        "kind": "swapped"})
        if (c := changed(a)) is not None and c != a:
            out.append({**base, "answer": c, "label": "wrong", "model": "variant", "kind": "number"})
        other = [h for h in HAND if h[0] != doc]
        out.append({**base, "answer": other[(7 * i + 3) % len(other)][3], "label": "wrong", "model": "variant",
                    "kind": "other page"})
    return out


def main() -> None:
    kept = [json.loads(x) for x in LABELLED.read_text().splitlines() if x.strip()]
    generated = [r for r in kept if r["model"] not in ("hand", "variant")]
    contexts = {}
    for r in generated:
        doc, _, page = r["source"].rpartition(" page ")
        contexts[(doc, int(page))] = r["context"]
    for r in json.loads((HERE / "pages.json").read_text()):
        contexts.setdefault((r["doc"], r["page"]), r["text"])
    rows = generated + build(contexts)
    LABELLED.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
    print(f"{LABELLED}: {len(rows)} pairs ({len(generated)} generated, {len(rows) - len(generated)} hand-made)")


if __name__ == "__main__":
    main()
