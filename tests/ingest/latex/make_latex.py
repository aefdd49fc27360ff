"""Two-column papers typeset with the journal classes of Debian's texlive-publishers (REVTeX,
ACM, Elsevier, IEEE): a title and abstract spanning both columns, sections, column and page-wide
(figure*) floats, footnotes and displayed equations, in body text whose every sentence is unique
(so reading order can be checked against the PDF's own blocks).

    apt-get install texlive-publishers texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended
    python tests/ingest/latex/make_latex.py      # writes tests/ingest/latex/*.pdf (committed)

Deterministic in content; the PDFs are committed so the tests need no TeX installation.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOPICS = ["river gauges", "sediment cores", "pump stations", "treatment basins", "rain radar", "aquifer wells",
          "flood barriers", "tidal sensors"]
VERBS = ["recorded", "measured", "reported", "sampled", "estimated", "logged"]


def sentence(i: int) -> str:
    t, v = TOPICS[i % len(TOPICS)], VERBS[i % len(VERBS)]
    return (f"Sentence {i} notes that the {t} {v} a mean of {100 + 7 * i} units over period {i % 12 + 1}, "
            f"which the team compared with the baseline of site {chr(65 + i % 26)}{i}.")


def paragraphs(start: int, n: int, per: int = 5) -> str:
    return "\n\n".join(" ".join(sentence(start + p * per + k) for k in range(per)) for p in range(n))


def body() -> str:
    figure = (r"\begin{figure}[t]\centering\rule{0.8\columnwidth}{3cm}"
              r"\caption{Figure caption one: gauge readings by month.}\end{figure}")
    table = (r"\begin{table}[b]\centering\begin{tabular}{lr}Station & Level\\ North & 12\\ South & 17\\"
             r"\end{tabular}\caption{Table caption one: station levels.}\end{table}")
    return "\n".join([
        r"\section{Introduction}", paragraphs(0, 3),
        "The first footnote sits here" + r"\footnote{Footnote one: the gauges were calibrated in May.}" + ".",
        figure,
        r"\section{Method}", paragraphs(100, 3),
        r"\begin{equation} E = \sum_{i=1}^{n} w_i x_i + \beta \label{eq:one}\end{equation}",
        paragraphs(200, 3), table,
        r"\begin{figure*}[t]\centering\rule{0.9\textwidth}{2.5cm}"
        r"\caption{Wide figure caption spanning both columns: all stations over the whole survey.}\end{figure*}",
        r"\section{Results}", paragraphs(300, 4),
        "A second footnote follows" + r"\footnote{Footnote two: values are monthly means.}" + ".",
        r"\begin{equation} R = \frac{a}{b} \end{equation}",
        paragraphs(400, 4),
        r"\section{Discussion}", paragraphs(500, 4),
    ])


ABSTRACT = ("Abstract text spanning both columns: we study water networks across eight kinds of sensors, "
            "and we report monthly means for every station in the survey.")

CLASSES = {
    "revtex": r"""\documentclass[aps,prl,twocolumn,superscriptaddress]{revtex4-2}
\begin{document}
\title{Water Networks in REVTeX}
\author{Ada Example}\affiliation{Riverside Institute}
\begin{abstract}%s\end{abstract}
\maketitle
%s
\end{document}""",
    "acm": r"""\documentclass[sigconf,nonacm]{acmart}
\settopmatter{printacmref=false}
\begin{document}
\title{Water Networks in ACM}
\author{Ada Example}\affiliation{\institution{Riverside Institute}\country{UK}}
\begin{abstract}%s\end{abstract}
\maketitle
%s
\end{document}""",
    "elsevier": r"""\documentclass[5p,twocolumn]{elsarticle}
\begin{document}
\begin{frontmatter}
\title{Water Networks in Elsevier}
\author{Ada Example}\address{Riverside Institute}
\begin{abstract}%s\end{abstract}
\end{frontmatter}
%s
\end{document}""",
    "ieee": r"""\documentclass[journal]{IEEEtran}
\begin{document}
\title{Water Networks in IEEE}
\author{Ada Example}
\maketitle
\begin{abstract}%s\end{abstract}
%s
\end{document}""",
}


def main() -> None:
    exe = shutil.which("pdflatex")
    if exe is None:
        raise SystemExit("pdflatex is not installed: apt-get install texlive-publishers texlive-latex-recommended")
    for name, tpl in CLASSES.items():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "paper.tex").write_text(tpl % (ABSTRACT, body()))
            for _ in range(2):  # references settle on the second pass
                subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp,
                               check=True, capture_output=True, env={"SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1",
                                                                    "PATH": "/usr/bin:/bin"})
            shutil.copy(Path(tmp) / "paper.pdf", HERE / f"{name}.pdf")
        print("wrote", HERE / f"{name}.pdf")


if __name__ == "__main__":
    main()
