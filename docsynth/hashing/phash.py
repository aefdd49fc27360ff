"""Perceptual hashes of page images: a 64-bit one to find candidates, a 256-bit one to confirm.

Both are pHashes: the image in grey, trimmed to its ink, shrunk (32x32; 64x64), and the signs
of its lowest DCT frequencies (8x8; 16x16) against their median. Measured on the 12 pages of
sample_pdfs/ and on 300 synthetic pages of many layouts (tests/pages.py, bench/decontam.py):
- re-encoding at JPEG quality 60, 0.5x and 1.7x resizes, 3 % crops, greyscale and a render at
  another dpi move the 64-bit hash at most 12 bits (99.9 % at most 10), the 256-bit one at
  most 40;
- a 3 % crop moves an untrimmed 64-bit hash 14 bits and a trimmed one 0-8 (the crop takes
  margin): that is why the image is trimmed first;
- distinct pages: the 64-bit hash alone cannot tell pages of one layout apart (23 of 44,850
  pairs of synthetic pages within 10 bits, 52 within 12: at 1,000 evaluation images, one page
  in two would match something), while the 256-bit hash puts every distinct pair at least 56
  bits apart. So a match is a 64-bit hash within `max_distance` (found in the multi-index
  table, docsynth.hashing.hamming) whose 256-bit hash is within `confirm_distance`.
JPEGs are decoded at a reduced scale in the DCT domain (PIL's draft mode): 2.5 ms a page for
both hashes for a 150-dpi baseline JPEG, against 19 ms for a full decode.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SIZE, LOW = 32, 8  # the 64-bit hash: 32x32 image, 8x8 lowest frequencies
FINE_SIZE, FINE_LOW = 64, 16  # the 256-bit hash: 64x64 image, 16x16 lowest frequencies
INK = 245  # grey levels under this count as ink when trimming the page's blank margin
FINE_WORDS = FINE_LOW * FINE_LOW // 64


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_DCT = _dct_matrix(SIZE)[:LOW]  # only the low rows are ever used
_FINE_DCT = _dct_matrix(FINE_SIZE)[:FINE_LOW]
_BITS = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def image_hash(data: bytes | memoryview) -> tuple[int, np.ndarray] | None:
    """(64-bit hash, 256-bit hash as 4 uint64) of encoded image bytes; None where they do not decode."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("L", (FINE_SIZE * 2, FINE_SIZE * 2))  # JPEG: decode at a reduced scale, still 2x the hash's
            return pil_hash(im)
    except Exception:  # PIL raises many kinds for bad data; a bad image has no hash
        return None


def pixels_hash(rgb: np.ndarray) -> tuple[int, np.ndarray]:
    """The two hashes of rendered RGB pixels (height x width x 3, any strides), from the green
    channel averaged over 16 of each 8x8 block's 64 pixels: 1 ms for an A4 page at 150 dpi,
    against 2 ms to decode its JPEG (bench/decontam.py), so ingest hashes every page for about
    6 % of its cost. Not the same numbers as image_hash of the page's JPEG (14 bits apart at
    worst on sample_pdfs/ and synthetic pages, median 2): compare hashes made the same way."""
    h8, w8 = rgb.shape[0] // 8, rgb.shape[1] // 8
    acc = np.zeros((h8, w8), dtype=np.uint16)
    for r in (1, 3, 5, 7):
        for c in (1, 3, 5, 7):
            acc += rgb[r:h8 * 8:8, c:w8 * 8:8, 1]
    return pil_hash(Image.fromarray((acc >> 4).astype(np.uint8)))


def pil_hash(im: Image.Image) -> tuple[int, np.ndarray]:
    """The two hashes of a PIL image."""
    g = np.asarray(im.convert("L"))
    ink = g < INK
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if len(rows) and len(cols):  # a blank page keeps its whole frame
        g = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    trimmed = Image.fromarray(g)
    coarse = _signs(trimmed, SIZE, _DCT)
    return int(_pack(coarse)[0]), _pack(_signs(trimmed, FINE_SIZE, _FINE_DCT))


def _signs(im: Image.Image, size: int, dct: np.ndarray) -> np.ndarray:
    small = np.asarray(im.resize((size, size), Image.Resampling.BOX), dtype=np.float64)
    d = (dct @ small @ dct.T).ravel()
    return d > np.median(d)


def _pack(bits: np.ndarray) -> np.ndarray:
    """Bits as uint64 words, 64 to a word."""
    return np.array([_BITS[w].sum(dtype=np.uint64) for w in bits.reshape(-1, 64)], dtype=np.uint64)


def fine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between 256-bit hashes (4 uint64 words on the last axis; broadcast)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(-1).astype(np.int16)
