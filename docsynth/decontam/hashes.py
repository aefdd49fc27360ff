"""What decontamination compares, computed once per file and kept: each row's image hashes and
each turn's question and question + answer n-grams.

A RowHashes is saved as one .npz named by what it was made from (a file's path, size and
modification time, or a shard's content key, and the hash settings), so a rerun, or a check
against a new evaluation set, reads it back instead of decoding images again.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docsynth.core.remote import shown, stat
from docsynth.config.section import config_hash
from docsynth.core.files import atomic_write
from docsynth.hashing.ngrams import ngram_hashes
from docsynth.core.text import normalise
from docsynth.hashing import phash

_ARRAYS = {"img": np.uint64, "fine": np.uint64, "img_row": np.int64, "turn_row": np.int64, "turn_idx": np.int32,
          "q": np.uint64, "q_off": np.int64, "q_words": np.int32, "qa": np.uint64, "qa_off": np.int64}


BAD_ROWS = 10  # rows with an image that does not decode, named in a message (the count is whole)


@dataclass(slots=True)
class RowHashes:
    """Rows' hashes: images (img, the 64-bit hash; fine, the 256-bit one as 4 words; img_row,
    the row each is in; an image that does not decode has none) and turns (turn_row, turn_idx), each turn's question n-grams q[q_off[t]:q_off[t+1]]
    and question + answer n-grams likewise in qa."""

    img: np.ndarray
    fine: np.ndarray
    img_row: np.ndarray
    turn_row: np.ndarray
    turn_idx: np.ndarray
    q: np.ndarray
    q_off: np.ndarray
    q_words: np.ndarray
    qa: np.ndarray
    qa_off: np.ndarray
    unreadable: int = 0  # images that did not decode
    unreadable_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # the first BAD_ROWS of their rows

    def question(self, t: int) -> np.ndarray:
        return self.q[self.q_off[t]:self.q_off[t + 1]]

    def question_answer(self, t: int) -> np.ndarray:
        return self.qa[self.qa_off[t]:self.qa_off[t + 1]]

    def save(self, path: Path) -> None:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, unreadable=self.unreadable, unreadable_rows=self.unreadable_rows,
                         **{k: getattr(self, k) for k in _ARRAYS})
        atomic_write(path, write)

    @classmethod
    def load(cls, path: Path) -> RowHashes | None:
        try:
            with np.load(path) as z:
                return cls(**{k: z[k] for k in _ARRAYS}, unreadable=int(z["unreadable"]),
                           unreadable_rows=z["unreadable_rows"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None  # a damaged cache file is made again


def hash_rows(rows: Iterable[tuple[int, list, list[tuple[str, str]]]], ngram: int,
              images: bool = True) -> RowHashes:
    """From (row, image bytes, [(question, answer)]) in row order."""
    img, fine, img_row, turn_row, turn_idx = [], [], [], [], []
    q, qa, words = [], [], []
    bad, bad_rows = 0, []
    for row, pics, turns in rows:
        for data in pics if images else ():
            h = phash.image_hash(data) if data else None
            if h is None:
                bad += 1
                if len(bad_rows) < BAD_ROWS and (not bad_rows or bad_rows[-1] != row):
                    bad_rows.append(row)
                continue
            img.append(h[0])
            fine.append(h[1])
            img_row.append(row)
        for i, (question, answer) in enumerate(turns):
            turn_row.append(row)
            turn_idx.append(i)
            q.append(ngram_hashes(question or "", ngram))
            words.append(len(normalise(question or "").split()))
            qa.append(ngram_hashes(f"{question or ''} {answer or ''}", ngram))
    off = lambda parts: np.concatenate([[0], np.cumsum([len(p) for p in parts], dtype=np.int64)]).astype(np.int64)  # noqa: E731
    cat = lambda parts: np.concatenate(parts).astype(np.uint64) if parts else np.empty(0, np.uint64)  # noqa: E731
    return RowHashes(np.array(img, dtype=np.uint64), np.array(fine, dtype=np.uint64).reshape(-1, phash.FINE_WORDS),
                     np.array(img_row, dtype=np.int64),
                     np.array(turn_row, dtype=np.int64), np.array(turn_idx, dtype=np.int32),
                     cat(q), off(q), np.array(words, dtype=np.int32), cat(qa), off(qa), bad,
                     np.array(bad_rows, dtype=np.int64))


class HashCache:
    """RowHashes kept in a folder, by key."""

    def __init__(self, folder: Path, ngram: int) -> None:
        self.folder, self.ngram = folder, ngram
        self.made = self.reused = 0

    def get(self, what: object, make: Callable[[], Iterable[tuple[int, list, list[tuple[str, str]]]]],
            images: bool = True) -> RowHashes:
        path = self.folder / f"{config_hash({'what': what, 'ngram': self.ngram, 'images': images}, phash.SIZE, phash.LOW, phash.FINE_SIZE, phash.FINE_LOW, phash.INK)}.npz"
        got = RowHashes.load(path) if path.exists() else None
        if got is not None:
            self.reused += 1
            return got
        got = hash_rows(make(), self.ngram, images)
        self.folder.mkdir(parents=True, exist_ok=True)
        got.save(path)
        self.made += 1
        return got


def file_key(path: Path | str) -> list:
    """What a file's hashes depend on: where it is, its size and its modification time (an
    object's: its URL, size and ETag)."""
    if isinstance(path, str):
        return [shown(path), *stat(path)]
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]
