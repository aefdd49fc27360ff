"""Near-duplicate documents and pages across a whole ingest run (recipe `ingest.dedup`).

Found once every task is done, over all of them in input order (task index, then document
order within the task, then page), so which copy is kept never depends on which worker finished
first: the first. Documents are compared by the MinHash signatures the workers wrote in their
task markers (docsynth.hashing.minhash), candidates found by LSH bands and confirmed by their
estimated similarity; pages by the perceptual hashes in the shards (docsynth.hashing.phash), found
in a multi-index table and confirmed by the 256-bit hash. The pages of a dropped document are
not compared again. OUT/duplicates.json lists what is dropped, which generate leaves out;
every drop is a reject naming the copy kept.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq

from docsynth.config.decontam import DedupConfig
from docsynth.hashing.hamming import HammingIndex
from docsynth.hashing.minhash import band_keys, similarity
from docsynth.hashing.phash import fine_distances
from docsynth.core.records import Reject

_COLUMNS = ["doc_id", "source", "page", "phash", "phash_fine"]


def find_duplicates(shards: list, signatures: list[list], cfg: DedupConfig) -> tuple[list[Reject], dict]:
    """(rejects, the duplicates.json content) for shards in task order and each task's
    [doc_id, signature hex] in document order."""
    rejects: list[Reject] = []
    docs: dict[str, str] = {}  # dropped doc -> kept doc
    sources: dict[str, str] = {}
    if cfg.documents:
        docs = _documents(_whole([s for task in signatures for s in task]), cfg)
    pages, where = [], []
    shard_of: dict[str, str] = {}
    for shard in shards:
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=4096, columns=_COLUMNS):
            for r in batch.to_pylist():
                sources.setdefault(r["doc_id"], r["source"])
                shard_of.setdefault(r["doc_id"], shard.name)
                if r["doc_id"] not in docs and r["phash"] is not None:
                    pages.append((r["phash"], r["phash_fine"]))
                    where.append((r["doc_id"], r["page"]))
    for doc, (kept, sim) in docs.items():
        rejects.append(Reject("ingest", sources.get(doc, "?"), doc, None,
                              f"near-duplicate: the text of document {kept} ({sources.get(kept, '?')}), "
                              f"similarity {sim:.2f}"))
    dropped_pages = _pages(pages, cfg) if cfg.pages else {}
    for i, (kept, dist) in sorted(dropped_pages.items()):
        (doc, page), (kdoc, kpage) = where[i], where[kept]
        rejects.append(Reject("ingest", sources[doc], doc, page,
                              f"near-duplicate: page {kpage} of document {kdoc} ({sources[kdoc]}), {dist} bits apart"))
    by_shard: dict[str, dict] = defaultdict(lambda: {"documents": [], "pages": []})
    for d in docs:
        by_shard[shard_of.get(d, "?")]["documents"].append(d)
    for i in sorted(dropped_pages):
        by_shard[shard_of[where[i][0]]]["pages"].append(list(where[i]))
    content = {"documents": {d: k for d, (k, _) in docs.items()},
               "pages": [[*where[i], *where[k]] for i, (k, _) in sorted(dropped_pages.items())],
               "by_shard": dict(by_shard)}  # what generate leaves out of each ingest shard
    return rejects, content


def _whole(sigs: list[list]) -> list[list]:
    """One signature per document: a large document's parts (docsynth.ingest.split) each signed
    their own pages, and the MinHash of the union of their shingles is the element-wise minimum
    (only the shingles across a part's edge are not in it)."""
    merged: dict[str, np.ndarray] = {}
    for doc, hexsig in sigs:
        sig = np.frombuffer(bytes.fromhex(hexsig), dtype=np.uint32)
        merged[doc] = np.minimum(merged[doc], sig) if doc in merged else sig
    return [[doc, sig.tobytes().hex()] for doc, sig in merged.items()]


def _documents(sigs: list[list], cfg: DedupConfig) -> dict[str, tuple[str, float]]:
    """Dropped document -> (the earliest kept one it copies, similarity)."""
    buckets: dict[bytes, list[int]] = defaultdict(list)
    kept: list[tuple[str, np.ndarray]] = []
    out: dict[str, tuple[str, float]] = {}
    for doc, hexsig in sigs:
        sig = np.frombuffer(bytes.fromhex(hexsig), dtype=np.uint32)
        keys = band_keys(sig, cfg.bands)
        cands = sorted({i for k in keys for i in buckets.get(k, ())})
        match = next(((kept[i][0], s) for i in cands if (s := similarity(sig, kept[i][1])) >= cfg.similarity), None)
        if match:
            out[doc] = match
            continue
        for k in keys:
            buckets[k].append(len(kept))
        kept.append((doc, sig))
    return out


def _pages(pages: list[tuple[int, bytes]], cfg: DedupConfig) -> dict[int, tuple[int, int]]:
    """Dropped page -> (the earliest kept page it copies, 256-bit distance), by position in input order."""
    if not pages:
        return {}
    coarse = np.array([p[0] for p in pages], dtype=np.uint64)
    fine = np.frombuffer(b"".join(p[1] for p in pages), dtype=np.uint64).reshape(len(pages), -1)
    qi, si, _ = HammingIndex.build(coarse).near(coarse, cfg.images.max_distance)
    earlier = si < qi
    qi, si = qi[earlier], si[earlier]
    d = fine_distances(fine[qi], fine[si])
    sure = d <= cfg.images.confirm_distance
    matches: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for q, s, dist in zip(qi[sure].tolist(), si[sure].tolist(), d[sure].tolist()):
        matches[q].append((s, dist))
    out: dict[int, tuple[int, int]] = {}
    for q in sorted(matches):  # in input order: what a page copies is decided before it is copied
        root = min(out[s][0] if s in out else s for s, _ in matches[q])
        out[q] = (root, int(fine_distances(fine[q], fine[root])))
    return out
