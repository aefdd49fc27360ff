"""Journal papers as real journals typeset them: the classes shipped in Debian's TeX packages
(REVTeX 4.1 and 4.2, acmart, elsarticle, IEEEtran, MNRAS, AASTeX), each with a title, authors and
abstract spanning both columns, numbered sections, column and page-wide floats, booktabs tables,
footnotes, displayed and page-wide equations (REVTeX's `widetext`), inline mathematics and
hyphenated, justified prose of our own (seeded, so every sentence differs and a block is found by
its first words).

    apt-get install texlive-publishers texlive-latex-recommended texlive-latex-extra \
        texlive-fonts-recommended texlive-science
    python tests/ingest/journals/make_journals.py   # writes tests/ingest/journals/*.pdf (committed)

Deterministic in content; the PDFs are committed so the tests need no TeX installation.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOUNS = ["aquifer", "catchment", "sediment", "gauge", "turbidity", "discharge", "estuary", "reservoir", "basin",
         "groundwater", "floodplain", "infiltration", "evaporation", "salinity", "nitrate", "phosphorus",
         "characterisation", "calibration", "uncertainty", "heterogeneity", "permeability", "conductivity",
         "thermoregulation", "electrochemistry", "photosynthesis", "microorganisms", "precipitation"]
ADJS = ["seasonal", "transient", "anisotropic", "dimensionless", "stochastic", "hydrological", "spatially resolved",
        "long-term", "nonlinear", "independent", "comparable", "representative", "electrochemical", "substantial"]
VERBS = ["constrains", "modulates", "reflects", "exceeds", "depends on", "correlates with", "dominates",
         "underestimates", "reproduces", "accounts for", "is insensitive to", "follows"]
LINKS = ["However,", "In contrast,", "Moreover,", "As expected,", "Consequently,", "For example,", "In particular,",
         "Surprisingly,", "At the same time,", "Following earlier work,"]
MATH = [r"$\alpha = 0.%d$", r"$\sigma_{%d}$", r"$k \approx %d\,\mathrm{m\,d^{-1}}$", r"$\Delta h_{%d}$",
        r"$\epsilon < 10^{-%d}$", r"$\sum_{i=1}^{%d} q_i$"]


class Prose:
    """Seeded, varied sentences: no two alike, some with mathematics, numbers or a citation."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def sentence(self) -> str:
        r, self.n = self.rng, self.n + 1
        words = [r.choice(LINKS)] if r.random() < 0.3 else []
        words += ["the", r.choice(ADJS), r.choice(NOUNS), r.choice(VERBS), "the", r.choice(NOUNS)]
        for _ in range(r.randint(0, 3)):
            words += [r.choice(["of", "in", "near", "during", "across", "beyond"]), "the", r.choice(ADJS),
                      r.choice(NOUNS)]
        if r.random() < 0.35:
            words += ["at", f"{r.randint(2, 980)}.{r.randint(0, 9)}", r.choice(["mm", "kPa", "per cent", "m"])]
        if r.random() < 0.25:
            words += ["with", r.choice(MATH) % r.randint(1, 9)]
        if r.random() < 0.2:
            words.append(f"[{r.randint(1, 40)}]")
        words += ["in", "site", f"{chr(65 + r.randint(0, 25))}{self.n}"]  # unique in every sentence
        s = " ".join(words)
        return s[0].upper() + s[1:] + "."

    def paragraph(self, lo: int = 3, hi: int = 8) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(lo, hi)))

    def paragraphs(self, n: int) -> str:
        return "\n\n".join(self.paragraph() for _ in range(n))


def table(p: Prose, star: str = "") -> str:
    rows = "\\\\\n".join(f"{site} & {p.rng.randint(10, 99)}.{p.rng.randint(0, 9)} & {p.rng.randint(100, 999)} & "
                         f"{p.rng.choice(['clay', 'sand', 'silt', 'gravel'])}"
                         for site in ["North basin", "South basin", "East gauge", "West gauge"])
    return (f"\\begin{{table{star}}}[t]\\centering\\caption{{Mean levels and discharge by station in the survey.}}"
            f"\\begin{{tabular}}{{lrrl}}\\toprule Station & Level (m) & Discharge & Soil\\\\\\midrule\n{rows}\\\\"
            f"\\bottomrule\\end{{tabular}}\\end{{table{star}}}")


def body(p: Prose, widetext: bool) -> str:
    wide_eq = (r"\begin{equation} Q(t) = \int_0^t \left[ \sum_{i=1}^{N} k_i \frac{\partial h_i}{\partial x} "
               r"+ \alpha \nabla^2 h + \beta \exp\left(-\frac{s}{\lambda}\right) \right] \mathrm{d}s "
               r"+ \gamma \sum_{j=1}^{M} \frac{q_j^2}{2 g A_j^2} \end{equation}")
    parts = [
        r"\section{Introduction}", p.paragraphs(3),
        p.paragraph() + r"\footnote{" + p.sentence() + "}",
        r"\begin{figure}[t]\centering\rule{0.8\columnwidth}{2.8cm}\caption{" + p.sentence() + r"}\end{figure}",
        p.paragraphs(2),
        r"\section{Methods}", p.paragraphs(2),
        r"\begin{equation} E = \sum_{i=1}^{n} w_i x_i + \beta, \qquad \frac{\partial h}{\partial t} = D \nabla^2 h "
        r"\label{eq:one}\end{equation}",
        p.paragraphs(2), table(p),
        r"\subsection{Field campaign}", p.paragraphs(3),
    ]
    if widetext:  # REVTeX: one column across the page for a long equation, then two again
        parts += [r"\begin{widetext}", p.paragraph(2, 3), wide_eq, p.paragraph(2, 3), r"\end{widetext}"]
    else:
        parts += [r"\begin{figure*}[t]\centering\rule{0.9\textwidth}{2.4cm}\caption{" + p.sentence() +
                  r"}\end{figure*}"]
    parts += [
        p.paragraphs(3),
        r"\begin{itemize}\item " + p.sentence() + r"\item " + p.sentence() + r"\item " + p.sentence() +
        r"\end{itemize}",
        r"\section{Results}", p.paragraphs(3), table(p, "*"),
        p.paragraph() + r"\footnote{" + p.sentence() + "}", p.paragraphs(2),
        r"\begin{equation} R = \frac{a}{b} \end{equation}", p.paragraphs(3),
        r"\section{Discussion}", p.paragraphs(4),
        r"\section{Conclusions}", p.paragraphs(2),
    ]
    return "\n\n".join(parts)


AUTHORS = ["Ada Example", "Bruno Sample", "Chiara Placeholder"]
CLASSES = {
    "revtex41": (r"""\documentclass[reprint,amsmath,amssymb,aps]{revtex4-1}
\usepackage{booktabs}
\begin{document}
\title{Seasonal Transport in Layered Aquifers}
\author{Ada Example}\affiliation{Riverside Institute, Cardiff, United Kingdom}
\author{Bruno Sample}\affiliation{Department of Physics, Example University, Lyon, France}
\date{\today}
\begin{abstract}%(abstract)s\end{abstract}
\maketitle
%(body)s
\end{document}""", True),
    "revtex42": (r"""\documentclass[aps,prl,reprint,superscriptaddress]{revtex4-2}
\usepackage{booktabs}
\begin{document}
\title{Turbidity Fronts in Estuaries}
\author{Chiara Placeholder}\affiliation{Coastal Laboratory, Genoa, Italy}
\begin{abstract}%(abstract)s\end{abstract}
\maketitle
%(body)s
\end{document}""", True),
    "acmart": (r"""\documentclass[sigconf,nonacm]{acmart}
\usepackage{booktabs}
\settopmatter{printacmref=false}
\begin{document}
\title{Streaming Gauge Data at Scale}
\author{Ada Example}\affiliation{\institution{Riverside Institute}\city{Cardiff}\country{UK}}
\author{Bruno Sample}\affiliation{\institution{Example University}\city{Lyon}\country{France}}
\begin{abstract}%(abstract)s\end{abstract}
\keywords{aquifers, gauges, streaming}
\maketitle
%(body)s
\end{document}""", False),
    "elsarticle": (r"""\documentclass[5p,times]{elsarticle}
\usepackage{booktabs,amsmath}
\begin{document}
\begin{frontmatter}
\title{Nitrate Leaching Under Transient Recharge}
\author{Ada Example}\address{Riverside Institute, Cardiff, United Kingdom}
\begin{abstract}%(abstract)s\end{abstract}
\begin{keyword} nitrate \sep recharge \sep aquifers \end{keyword}
\end{frontmatter}
%(body)s
\end{document}""", False),
    "ieeetran": (r"""\documentclass[journal]{IEEEtran}
\usepackage{booktabs,amsmath}
\begin{document}
\title{Adaptive Calibration of Pressure Sensors}
\author{Ada~Example,~\IEEEmembership{Member,~IEEE,} and Bruno~Sample}
\maketitle
\begin{abstract}%(abstract)s\end{abstract}
\begin{IEEEkeywords} calibration, sensors, groundwater \end{IEEEkeywords}
%(body)s
\end{document}""", False),
    "ieeeconf": (r"""\documentclass[conference]{IEEEtran}
\usepackage{booktabs,amsmath}
\begin{document}
\title{Low-Power Telemetry for Flood Barriers}
\author{\IEEEauthorblockN{Chiara Placeholder}\IEEEauthorblockA{Coastal Laboratory, Genoa, Italy}}
\maketitle
\begin{abstract}%(abstract)s\end{abstract}
%(body)s
\end{document}""", False),
    "mnras": (r"""\documentclass[fleqn,usenatbib]{mnras}
\usepackage{booktabs,amsmath}
\title[Sediment cores]{Sediment Cores and the Record of Floods}
\author[A. Example]{Ada Example$^{1}$\thanks{E-mail: ada@example.org} and Bruno Sample$^{2}$\\
$^{1}$Riverside Institute, Cardiff, United Kingdom\\ $^{2}$Example University, Lyon, France}
\begin{document}
\maketitle
\begin{abstract}%(abstract)s\end{abstract}
\begin{keywords} floods -- sediments -- methods: statistical \end{keywords}
%(body)s
\end{document}""", False),
    "aastex": (r"""\documentclass[twocolumn]{aastex631}
\usepackage{booktabs}
\begin{document}
\title{Rain Radar Retrievals Over Mountains}
\author{Bruno Sample}\affiliation{Example University, Lyon, France}
\begin{abstract}%(abstract)s\end{abstract}
\keywords{radar --- precipitation}
%(body)s
\end{document}""", False),
}


def main() -> None:
    exe = shutil.which("pdflatex")
    if exe is None:
        raise SystemExit("pdflatex is not installed: see this file's docstring")
    for seed, (name, (tpl, widetext)) in enumerate(CLASSES.items()):
        p = Prose(seed)
        source = tpl % {"abstract": p.paragraph(5, 6), "body": body(p, widetext)}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "paper.tex").write_text(source)
            for _ in range(2):  # references settle on the second pass
                res = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp,
                                     capture_output=True, text=True,
                                     env={"SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1", "PATH": "/usr/bin:/bin",
                                          "HOME": tmp})
                if res.returncode:
                    raise SystemExit(f"{name}: pdflatex failed:\n{res.stdout[-2000:]}")
            shutil.copy(Path(tmp) / "paper.pdf", HERE / f"{name}.pdf")
        print("wrote", HERE / f"{name}.pdf")


if __name__ == "__main__":
    main()
