"""Build the sample corpus in sample_pdfs/ (committed; rerun to regenerate).

    python sample_pdfs/make_samples.py

Every file is written with pymupdf from text in this script, so the corpus is
reproducible byte for byte and free of third-party copyright. The set:

- two_column_article.pdf  a two-page paper: full-width title and abstract, then
  two columns with a bar-chart figure. The body is written line by line ACROSS
  both columns (left line, right line, ...), as some PDF producers do, so the
  content-stream order is wrong and reading order must come from geometry.
  two_column_article.columns.json keeps the expected column texts.
- invoice.pdf             an invoice with key-value fields and line items.
- table_report.pdf        a table-heavy page (quarterly figures by region).
- annual_report.pdf       a four-page report with headings and paragraphs.
- lettre_fr.pdf           a French business letter; bericht_de.pdf a German page.
- scanned_report.pdf      an image-only copy (200 dpi greyscale, JPEG) of the
  first two pages of annual_report.pdf: no text layer at all.
  scanned_report.txt holds its ground-truth text, pages separated by form feeds.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pymupdf

HERE = Path(__file__).resolve().parent
A4 = pymupdf.paper_rect("a4")
FONT, BOLD, SERIF = "helv", "hebo", "tiro"


def wrap(text: str, width: float, font: str = SERIF, size: float = 10) -> list[str]:
    """Greedy word wrap of text to lines no wider than width points."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            trial = f"{line} {word}".strip()
            if pymupdf.get_text_length(trial, fontname=font, fontsize=size) <= width:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def save(doc: pymupdf.Document, name: str) -> None:
    doc.set_metadata({"title": name, "producer": "docsynth sample_pdfs", "creator": "make_samples.py"})
    doc.save(HERE / name, garbage=4, deflate=True, no_new_id=True)


def paragraphs(page, x: float, y: float, width: float, text: str, size=10.5, lead=1.35, font=SERIF):
    """Write wrapped paragraphs top-down; returns the y below the last line."""
    for para in textwrap.dedent(text).strip().split("\n\n"):
        for line in wrap(" ".join(para.split()), width, font, size):
            page.insert_text((x, y), line, fontname=font, fontsize=size)
            y += size * lead
        y += size * 0.6
    return y


# --------------------------------------------------------------------------- article

ARTICLE_LEFT = """
Document understanding models are trained on pairs of page images and questions
whose answers can be read from the page. Collecting such pairs by hand is slow:
annotators need about four minutes per page to write three good questions, and
the questions cluster around titles and totals. We study whether pairs written by
a language model from the page's own text layer can replace part of that effort.

Our corpus holds 41,200 PDF files crawled from public agency websites between
March and September 2024. After removing duplicates by content hash, 38,950
documents with 212,400 pages remained. The median document has four pages; the
longest has 312. We kept the text layer where it was present and readable, and
fell back to optical character recognition on 7.9 percent of the pages.

For each page we asked the model for four question and answer pairs. A regular
expression filter then removed answers containing program code and answers that
declared the question unanswerable. A grounding check dropped 14.6 percent of
the remaining pairs because their answers did not occur in the page text.
"""

ARTICLE_RIGHT = """
The figure below compares three training mixtures. The model trained on human
pairs alone reached 61.3 accuracy on the held-out set. Adding synthetic pairs at
equal weight raised it to 66.8, and a mixture weighted two to one in favour of
synthetic pairs reached 68.1, the best result we observed.

Errors fall into three groups. First, questions about numbers in tables were
answered with the wrong row in 9 percent of cases. Second, pages with two
columns produced questions that mixed sentences from both columns when the text
was not extracted in reading order. Third, scanned pages gave shorter answers.

We conclude that synthetic pairs are a useful complement to human annotation
when the text is extracted in reading order and filtered for grounding. The
corpus, prompts and filters are released under the CC BY 4.0 licence, and the
code runs on a single machine or a small cluster without modification.
"""

ARTICLE_P2_LEFT = """
Related work. Earlier datasets relied on templates filled from form fields,
which gave many pairs but little variety. Later efforts used large language
models on OCR output and found that recognition errors propagated into the
answers. Our approach differs in preferring the born-digital text layer.

Limitations. The grounding check compares normalised answer strings with the
page text and cannot verify answers that paraphrase the document. It also
cannot detect a correct answer to a question that the page does not support.
"""

ARTICLE_P2_RIGHT = """
Acknowledgements. We thank the archive staff of the regional library in Lyon for
access to the scanned collection, and the reviewers for their careful reading.

Funding. This work was supported by grant 2024-117 of the Open Data Programme.
The authors declare no competing interests. Correspondence should be addressed
to the first author at the Institute for Document Analysis, 12 Harbour Street.
"""


def interleaved_columns(page, y: float, left: str, right: str, gutter=24.0, margin=54.0, size=10.0):
    """Write two columns line by line across the page; returns (y_end, left_lines, right_lines)."""
    col_w = (page.rect.width - 2 * margin - gutter) / 2
    ll = [line for p in textwrap.dedent(left).strip().split("\n\n") for line in wrap(" ".join(p.split()), col_w, size=size) + [""]]
    rl = [line for p in textwrap.dedent(right).strip().split("\n\n") for line in wrap(" ".join(p.split()), col_w, size=size) + [""]]
    lead = size * 1.3
    for i in range(max(len(ll), len(rl))):
        if i < len(ll) and ll[i]:
            page.insert_text((margin, y), ll[i], fontname=SERIF, fontsize=size)
        if i < len(rl) and rl[i]:
            page.insert_text((margin + col_w + gutter, y), rl[i], fontname=SERIF, fontsize=size)
        y += lead
    return y, [x for x in ll if x], [x for x in rl if x]


def bar_chart(page, rect: pymupdf.Rect, labels, values, caption: str):
    shape = page.new_shape()
    shape.draw_line(rect.bl, rect.br)
    shape.draw_line(rect.bl, rect.tl)
    shape.finish(color=(0, 0, 0), width=0.8)
    bw = rect.width / (len(values) * 2)
    top = max(values)
    for i, v in enumerate(values):
        x0 = rect.x0 + bw * (2 * i + 0.5)
        h = (rect.height - 10) * v / top
        shape.draw_rect(pymupdf.Rect(x0, rect.y1 - h, x0 + bw, rect.y1))
        shape.finish(color=(0.1, 0.2, 0.5), fill=(0.3 + 0.2 * i, 0.45, 0.75), width=0.5)
    shape.commit()
    for i, (lab, v) in enumerate(zip(labels, values)):
        x0 = rect.x0 + bw * (2 * i + 0.5)
        page.insert_text((x0, rect.y1 + 10), lab, fontname=FONT, fontsize=7)
        page.insert_text((x0 + 2, rect.y1 - (rect.height - 10) * v / top - 3), f"{v}", fontname=FONT, fontsize=7)
    page.insert_text((rect.x0, rect.y1 + 24), caption, fontname=FONT, fontsize=8)


def make_article() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=A4.width, height=A4.height)
    page.insert_text((54, 70), "Synthetic Question Answering Pairs for Document Understanding", fontname=BOLD, fontsize=15)
    page.insert_text((54, 90), "Claire Moreau, Jonas Albrecht and Priya Raman - Institute for Document Analysis", fontname=FONT, fontsize=9.5)
    y = paragraphs(page, 54, 118, A4.width - 108, """
        Abstract. We generate question and answer pairs from the text layer of
        born-digital PDF files with a language model, filter them for code, refusals
        and grounding, and show that adding them to human-written pairs improves a
        document question answering model by 6.8 points on a held-out set.
        """, size=9.5, font=FONT)
    y, l1, r1 = interleaved_columns(page, y + 14, ARTICLE_LEFT, ARTICLE_RIGHT)
    chart = pymupdf.Rect(80, y + 10, 260, y + 130)
    bar_chart(page, chart, ["human", "1:1", "2:1"], [61.3, 66.8, 68.1], "Figure 1: Accuracy by training mixture.")
    page.insert_text((54, A4.height - 40), "Page 1", fontname=FONT, fontsize=8)
    page2 = doc.new_page(width=A4.width, height=A4.height)
    _, l2, r2 = interleaved_columns(page2, 72, ARTICLE_P2_LEFT, ARTICLE_P2_RIGHT)
    page2.insert_text((54, A4.height - 40), "Page 2", fontname=FONT, fontsize=8)
    save(doc, "two_column_article.pdf")
    (HERE / "two_column_article.columns.json").write_text(
        json.dumps({"pages": [{"left": l1, "right": r1}, {"left": l2, "right": r2}]}, indent=1) + "\n")


# --------------------------------------------------------------------------- invoice

def make_invoice() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=A4.width, height=A4.height)
    page.insert_text((54, 72), "Northwind Office Supplies Ltd.", fontname=BOLD, fontsize=16)
    page.insert_text((54, 90), "4 Mill Lane, Bristol BS1 5QT, United Kingdom - VAT GB 284 1160 37", fontname=FONT, fontsize=9)
    page.insert_text((400, 72), "INVOICE", fontname=BOLD, fontsize=20)
    fields = [("Invoice number:", "INV-2024-00871"), ("Invoice date:", "14 October 2024"),
              ("Due date:", "13 November 2024"), ("Customer ID:", "C-10442"),
              ("Purchase order:", "PO-55190"), ("Payment terms:", "30 days net")]
    y = 130
    for k, v in fields:
        page.insert_text((54, y), k, fontname=BOLD, fontsize=10)
        page.insert_text((170, y), v, fontname=FONT, fontsize=10)
        y += 16
    page.insert_text((330, 130), "Bill to:", fontname=BOLD, fontsize=10)
    for i, line in enumerate(["Harbour Dental Clinic", "Attn: Dr. Amelia Stone", "22 Quay Street", "Cardiff CF10 1EA"]):
        page.insert_text((330, 146 + 16 * i), line, fontname=FONT, fontsize=10)
    items = [("A4 copier paper, 80 g, box of 5 reams", "12", "21.50", "258.00"),
             ("Black toner cartridge TN-2420", "4", "64.90", "259.60"),
             ("Lever arch files, blue, pack of 10", "6", "18.75", "112.50"),
             ("Desk organiser, bamboo", "3", "24.00", "72.00"),
             ("Whiteboard markers, assorted, pack of 12", "5", "9.80", "49.00")]
    y = 250
    cols = [54, 330, 390, 470]
    for x, h in zip(cols, ["Description", "Qty", "Unit price", "Amount (GBP)"]):
        page.insert_text((x, y), h, fontname=BOLD, fontsize=10)
    page.draw_line((54, y + 5), (A4.width - 54, y + 5), width=0.6)
    for row in items:
        y += 18
        for x, cell in zip(cols, row):
            page.insert_text((x, y), cell, fontname=FONT, fontsize=10)
    page.draw_line((54, y + 8), (A4.width - 54, y + 8), width=0.6)
    for k, v in [("Subtotal:", "751.10"), ("VAT 20%:", "150.22"), ("Total due:", "901.32")]:
        y += 20
        page.insert_text((390, y), k, fontname=BOLD, fontsize=10)
        page.insert_text((470, y), v, fontname=FONT, fontsize=10)
    paragraphs(page, 54, y + 50, A4.width - 108, """
        Please pay by bank transfer to Northwind Office Supplies Ltd., sort code
        20-45-77, account 83091264, quoting the invoice number. Goods remain our
        property until paid in full. Questions about this invoice: accounts@northwind.example,
        telephone 0117 496 0321.
        """, size=9, font=FONT)
    save(doc, "invoice.pdf")


# --------------------------------------------------------------------------- table

def make_table() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=A4.width, height=A4.height)
    page.insert_text((54, 70), "Quarterly Sales by Region, Fiscal Year 2023", fontname=BOLD, fontsize=14)
    page.insert_text((54, 88), "All figures in thousands of euros. Source: internal ledger, audited 12 February 2024.", fontname=FONT, fontsize=9)
    head = ["Region", "Q1", "Q2", "Q3", "Q4", "Total", "Growth"]
    rows = [("Nordics", 1204, 1311, 1275, 1498), ("Benelux", 980, 1022, 1101, 1187),
            ("Iberia", 755, 802, 844, 913), ("Central Europe", 1530, 1488, 1602, 1755),
            ("British Isles", 1122, 1175, 1160, 1249), ("Italy", 690, 734, 771, 802),
            ("France", 1410, 1390, 1456, 1533), ("Baltics", 310, 342, 365, 401)]
    xs = [54, 190, 250, 310, 370, 430, 500]
    y = 130
    for x, h in zip(xs, head):
        page.insert_text((x, y), h, fontname=BOLD, fontsize=10)
    page.draw_line((54, y + 5), (A4.width - 54, y + 5), width=0.6)
    totals = [0, 0, 0, 0]
    for name, *qs in rows:
        y += 18
        cells = [name] + [f"{q:,}" for q in qs] + [f"{sum(qs):,}", f"{(qs[3] - qs[0]) / qs[0] * 100:.1f}%"]
        totals = [a + b for a, b in zip(totals, qs)]
        for x, c in zip(xs, cells):
            page.insert_text((x, y), c, fontname=FONT, fontsize=10)
    page.draw_line((54, y + 6), (A4.width - 54, y + 6), width=0.6)
    y += 20
    for x, c in zip(xs, ["All regions"] + [f"{t:,}" for t in totals] + [f"{sum(totals):,}", ""]):
        page.insert_text((x, y), c, fontname=BOLD, fontsize=10)
    y = paragraphs(page, 54, y + 40, A4.width - 108, """
        Central Europe remained the largest region with 6,375 thousand euros for the
        year, while the Baltics grew fastest, by 29.4 percent from the first to the
        fourth quarter. Iberia and Italy grew steadily in every quarter.
        """, size=10, font=FONT)
    page.insert_text((54, y + 20), "Headcount by Region, 31 December 2023", fontname=BOLD, fontsize=12)
    y += 44
    for x, h in zip([54, 190, 280, 370], ["Region", "Sales staff", "Support staff", "Offices"]):
        page.insert_text((x, y), h, fontname=BOLD, fontsize=10)
    for name, a, b, c in [("Nordics", 42, 11, 3), ("Benelux", 35, 9, 2), ("Iberia", 28, 7, 2), ("Central Europe", 57, 16, 4)]:
        y += 18
        for x, cell in zip([54, 190, 280, 370], [name, str(a), str(b), str(c)]):
            page.insert_text((x, y), cell, fontname=FONT, fontsize=10)
    save(doc, "table_report.pdf")


# --------------------------------------------------------------------------- report

REPORT = [
    ("1. Introduction", """
    The Riverside Water Authority supplies drinking water to 412,000 residents in
    nine municipalities. This report covers the year ending 31 December 2023 and
    was approved by the board on 18 March 2024. It describes the state of the
    network, the quality of the water delivered, the investments made during the
    year and the priorities for the next three years.

    The year was marked by a dry summer. Rainfall between June and August was 38
    percent below the long-term average, and demand peaked at 171 million litres
    on 11 July, the highest daily figure since records began in 1987. No supply
    restrictions were needed, because the Elm Valley reservoir had been enlarged
    in 2021 and held 92 percent of its capacity at the start of June.
    """),
    ("2. Network and Operations", """
    The network comprises 3,140 kilometres of mains, 14 pumping stations and 6
    treatment works. During the year 41 kilometres of old cast iron mains were
    replaced with polyethylene pipes, slightly more than the target of 38
    kilometres. Leakage fell from 17.2 percent to 15.8 percent of water put into
    supply, the lowest level recorded by the authority.

    Unplanned interruptions longer than three hours affected 2,310 properties,
    compared with 3,005 in the previous year. The longest interruption lasted 9
    hours and followed a burst main on Station Road in Ashford on 2 February.
    Customer complaints about supply fell by 11 percent to 1,874.
    """),
    ("3. Water Quality", """
    The authority took 18,620 samples at treatment works, service reservoirs and
    customer taps. Of these, 18,604 met every regulatory standard, a compliance
    rate of 99.91 percent. The sixteen failures concerned iron and turbidity at
    the tap and were traced to old mains, all of which are now scheduled for
    replacement before the end of 2025.

    Nitrate concentrations in the Elm Valley catchment averaged 21 milligrams per
    litre, well below the limit of 50. The authority continued its programme with
    local farmers to reduce fertiliser run-off, which now covers 64 farms and
    8,900 hectares.
    """),
    ("4. Finance and Investment", """
    Revenue rose by 4.1 percent to 118.6 million pounds, mainly because of the
    tariff increase approved in 2022. Operating costs rose by 6.3 percent to 81.2
    million pounds, driven by electricity prices, which accounted for 14.9 million
    pounds, up from 11.0 million pounds the year before.

    Capital investment totalled 46.8 million pounds. The largest projects were
    the new ultraviolet treatment stage at Kingsmead works, which cost 12.4
    million pounds and was commissioned in October, and the mains replacement
    programme, which cost 17.1 million pounds.
    """),
    ("5. Priorities for 2024 to 2026", """
    The board has set three priorities. First, leakage is to fall below 13 percent
    by 2026, through pressure management and the replacement of a further 120
    kilometres of mains. Second, energy use per million litres treated is to fall
    by 10 percent, with solar panels at four sites. Third, every customer will be
    offered a smart meter by the end of 2025.

    The capital programme for the three years is budgeted at 152 million pounds,
    of which 61 million pounds will be financed from operating surpluses and the
    remainder from long-term loans at fixed rates.
    """),
    ("6. Governance", """
    The board met eleven times during the year. Attendance was 96 percent. Two new
    members joined in May: Ruth Okafor, a chartered accountant, and Daniel Weiss,
    a civil engineer. The audit committee reviewed the risk register each quarter
    and commissioned an external review of cyber security, which was completed in
    November and whose recommendations are being implemented.
    """),
]


def make_report() -> None:
    doc = pymupdf.open()
    sections = iter(REPORT)
    for pno in range(4):
        page = doc.new_page(width=A4.width, height=A4.height)
        y = 72
        if pno == 0:
            page.insert_text((54, y), "Riverside Water Authority - Annual Report 2023", fontname=BOLD, fontsize=16)
            y += 36
        per_page = 2 if pno < 2 else 1
        for _ in range(per_page):
            sec = next(sections, None)
            if sec is None:
                break
            page.insert_text((54, y), sec[0], fontname=BOLD, fontsize=12)
            y = paragraphs(page, 54, y + 20, A4.width - 108, sec[1], size=11) + 14
        page.insert_text((A4.width / 2 - 10, A4.height - 36), f"{pno + 1}", fontname=FONT, fontsize=9)
    save(doc, "annual_report.pdf")


# --------------------------------------------------------------------------- languages

LETTRE = """
Madame, Monsieur,

Nous avons bien reçu votre demande du 3 septembre 2024 concernant le
remboursement de la facture numéro 2024-3318, d'un montant de 486,40 euros.
Après vérification, nous confirmons que la commande a été livrée avec onze jours
de retard et que vous avez droit à une indemnité de 10 pour cent du montant.

Le remboursement de 48,64 euros sera effectué par virement sur le compte indiqué
dans votre dossier avant le 30 septembre 2024. Aucune démarche supplémentaire
n'est nécessaire de votre part.

Nous vous prions de nous excuser pour ce désagrément et restons à votre
disposition au 04 72 18 55 90, du lundi au vendredi de 9 heures à 17 heures.

Veuillez agréer, Madame, Monsieur, l'expression de nos salutations distinguées.

Hélène Garnier, responsable du service clientèle
"""

BERICHT = """
Die Stadtbibliothek Freiburg verzeichnete im Jahr 2023 insgesamt 612.000
Besuche, elf Prozent mehr als im Vorjahr. Besonders gefragt waren die neuen
Lernplätze im Obergeschoss, die seit März täglich bis 22 Uhr geöffnet sind.

Der Bestand umfasst 284.500 Medien, davon 61.200 digitale Titel. Die Ausleihen
digitaler Medien stiegen um 23 Prozent, während die Ausleihen gedruckter Bücher
mit 1,18 Millionen nahezu unverändert blieben.

Für 2024 plant die Bibliothek eine Zweigstelle im Stadtteil Weingarten. Die
Kosten von 2,4 Millionen Euro werden zu zwei Dritteln vom Land
Baden-Württemberg getragen. Die Eröffnung ist für den Herbst 2025 vorgesehen.
"""


def make_languages() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=A4.width, height=A4.height)
    page.insert_text((54, 72), "Maison Vernier S.A. - Service clientèle", fontname=BOLD, fontsize=13)
    page.insert_text((54, 88), "17 rue de la République, 69002 Lyon", fontname=FONT, fontsize=9)
    page.insert_text((380, 120), "Lyon, le 12 septembre 2024", fontname=FONT, fontsize=10)
    page.insert_text((54, 150), "Objet : remboursement de la facture 2024-3318", fontname=BOLD, fontsize=10.5)
    paragraphs(page, 54, 180, A4.width - 108, LETTRE, size=11)
    save(doc, "lettre_fr.pdf")
    doc = pymupdf.open()
    page = doc.new_page(width=A4.width, height=A4.height)
    page.insert_text((54, 72), "Jahresbericht 2023 der Stadtbibliothek Freiburg", fontname=BOLD, fontsize=14)
    paragraphs(page, 54, 110, A4.width - 108, BERICHT, size=11)
    save(doc, "bericht_de.pdf")


# --------------------------------------------------------------------------- scanned

def make_scanned() -> None:
    """Image-only copy of the report's first two pages, plus ground truth text."""
    src = pymupdf.open(HERE / "annual_report.pdf")
    out = pymupdf.open()
    truth = []
    for pno in range(2):
        page = src[pno]
        truth.append(page.get_text("text", sort=True).strip())
        pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
        new = out.new_page(width=page.rect.width, height=page.rect.height)
        new.insert_image(new.rect, stream=pix.tobytes("jpeg", jpg_quality=80))
    save(out, "scanned_report.pdf")
    (HERE / "scanned_report.txt").write_text("\f".join(truth) + "\n")


def main() -> None:
    make_article()
    make_invoice()
    make_table()
    make_report()
    make_languages()
    make_scanned()
    for p in sorted(HERE.glob("*.pdf")):
        print(f"{p.name:28s} {p.stat().st_size:>8,d} bytes")


if __name__ == "__main__":
    main()
