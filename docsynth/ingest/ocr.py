"""Tesseract OCR through pytesseract: checks before work starts, and per-page OCR."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pymupdf

from docsynth.core.errors import MissingDependencyError
from docsynth.ingest.pdf import BadPage, zoom_for
from docsynth.config.recipe import OcrConfig


def apt_package(lang: str) -> str:
    """Debian's package for a tesseract language, e.g. chi_sim -> tesseract-ocr-chi-sim."""
    return "tesseract-ocr-" + lang.lower().replace("_", "-")


def check_tesseract(languages: str) -> str:
    """Fail early, naming what to install, if tesseract or a language is missing; returns its version."""
    exe = shutil.which("tesseract")
    hint = "(or set ingest.ocr.mode: never if no page needs OCR)"
    if exe is None:
        raise MissingDependencyError(f"tesseract is not installed: apt-get install tesseract-ocr {hint}")
    try:
        out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30)
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MissingDependencyError(f"tesseract at {exe} does not run: {e}") from None
    have = {ln.strip() for ln in out.stdout.splitlines()[1:] if ln.strip()}
    missing = [lang for lang in languages.split("+") if lang not in have]
    if missing:
        pkgs = " ".join(apt_package(m) for m in missing)
        raise MissingDependencyError(
            f"tesseract has no language data for {', '.join(missing)} (installed: {', '.join(sorted(have)) or 'none'}): "
            f"apt-get install {pkgs} {hint}")
    return (version.stdout or version.stderr).splitlines()[0].strip() if (version.stdout or version.stderr) else "tesseract"


# Below this, upsampling a scan does help tesseract; above it, it only costs time.
MIN_NATIVE_DPI = 200


def scan_dpi(page: pymupdf.Page) -> float | None:
    """The resolution of a page that is one raster image covering it (a scan), else None."""
    infos = page.get_image_info()
    if len(infos) != 1:
        return None
    box = pymupdf.Rect(infos[0]["bbox"])
    if box.is_empty or box.get_area() < 0.9 * page.rect.get_area():
        return None
    return min(infos[0]["width"] / (box.width / 72), infos[0]["height"] / (box.height / 72))


def ocr_dpi(page: pymupdf.Page, cfg: OcrConfig) -> float:
    """ocr.dpi, or a scan's own resolution where lower: upsampling a 200 dpi scan to 300 dpi
    gave the same text here and cost 25 % more time (bench/ingest.py)."""
    native = scan_dpi(page)
    return cfg.dpi if native is None else min(cfg.dpi, max(native, MIN_NATIVE_DPI))


def ocr_page(page: pymupdf.Page, cfg: OcrConfig, max_pixels: int) -> tuple[str, float, int]:
    """OCR text of a page (lines and paragraphs kept), the mean word confidence (0-100), and the
    rotation (degrees) that made the page upright. Upside-down scans were OCRed as garbage
    (confidence 35) and kept: a page read with confidence under ocr.orientation_below is
    checked with tesseract's orientation detection (OSD) and, if it says the page is turned,
    read again turned upright; the better reading is kept."""
    text, conf, path = _ocr(page, cfg, max_pixels, 0, keep=True)
    try:
        if conf >= cfg.orientation_below or not text.strip():
            return text, conf, 0
        angle = _orientation(path, cfg)
    finally:
        os.unlink(path)
    if angle:
        text2, conf2, _ = _ocr(page, cfg, max_pixels, angle)
        if conf2 > conf:
            return text2, conf2, angle
    return text, conf, 0


def _orientation(path: str, cfg: OcrConfig) -> int:
    """Degrees to turn the image upright by tesseract's OSD (0 when unsure or it fails)."""
    import pytesseract

    try:
        osd = pytesseract.image_to_osd(path, timeout=cfg.timeout_s, output_type=pytesseract.Output.DICT,
                                       config="--psm 0 -c min_characters_to_try=20")
    except (RuntimeError, pytesseract.TesseractError):  # too little text to tell, or a timeout
        return 0
    return int(osd.get("rotate", 0)) % 360 if float(osd.get("orientation_conf", 0)) >= 1.0 else 0


def _ocr(page: pymupdf.Page, cfg: OcrConfig, max_pixels: int, angle: int, keep: bool = False):
    """(text, confidence, the image's path if keep else None) of the page turned by angle."""
    import pytesseract

    zoom = zoom_for(page.rect, ocr_dpi(page, cfg), max_pixels)
    try:
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom).prerotate(angle), colorspace=pymupdf.csGRAY, alpha=False)
    except Exception as e:
        raise BadPage(f"render for OCR failed: {e}") from None
    # An uncompressed PGM costs nothing to write; pytesseract would PNG-encode a PIL image.
    fd, path = tempfile.mkstemp(suffix=".pgm", prefix="docsynth-ocr-")
    os.close(fd)
    try:
        pix.save(path, output="pgm")
        data = pytesseract.image_to_data(
            path, lang=cfg.languages, timeout=cfg.timeout_s, output_type=pytesseract.Output.DICT,
            config=f"--dpi {int(round(zoom * 72))}")
    except BaseException as e:
        os.unlink(path)
        if isinstance(e, RuntimeError):  # pytesseract raises RuntimeError on timeout
            if "timeout" in str(e).lower():
                raise BadPage(f"OCR timed out after {cfg.timeout_s:g} s") from None
            raise BadPage(f"OCR failed: {e}") from None
        if isinstance(e, pytesseract.TesseractError):
            raise BadPage(f"OCR failed: {e.message or e}") from None
        raise
    if not keep:
        os.unlink(path)
    return (*_assemble(data), path if keep else None)


def _assemble(data: dict) -> tuple[str, float]:
    """Text from tesseract's word table: words joined into lines, paragraphs by blank lines."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    confs: list[float] = []
    for text, conf, b, p, ln in zip(data["text"], data["conf"], data["block_num"], data["par_num"], data["line_num"]):
        word = str(text).strip()
        if not word:
            continue
        lines.setdefault((b, p, ln), []).append(word)
        if float(conf) >= 0:
            confs.append(float(conf))
    out: list[str] = []
    prev_par = None
    for (b, p, _), words in lines.items():
        if prev_par is not None and (b, p) != prev_par:
            out.append("")
        out.append(" ".join(words))
        prev_par = (b, p)
    return "\n".join(out), (sum(confs) / len(confs) if confs else 0.0)
