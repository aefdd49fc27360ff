"""Remote inputs through fsspec against real servers on loopback: S3 (moto's S3 server) for loose
PDFs, PDFA-style tar shards and parquet; an HTTP server with ranges for https-style URLs. The
pages equal those of the local copies; credentials never reach any output; 403 and 404 are one
message naming the URL."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from docsynth.executors.local import run_ingest
from docsynth.ingest.view import iter_pages
from tests.conftest import SAMPLES, recipe
from tests.ingest.test_tars import shard
from tests.s3server import S3, SECRET

pytest.importorskip("s3fs")
pytest.importorskip("moto")
NEVER = {"mode": "never"}
LOOSE = ["invoice.pdf", "lettre_fr.pdf"]
IN_TAR = ["annual_report.pdf", "bericht_de.pdf"]
IN_PARQUET = ["table_report.pdf"]


def pages(out: Path) -> dict:
    return {(p["doc_id"], p["page"]): (p["text"], hashlib.sha256(p["image"]).hexdigest()) for p in iter_pages(out)}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3()
    d = tmp_path_factory.mktemp("upload")
    shard(d / "pdfa-000.tar", [(Path(n).stem, (SAMPLES / n).read_bytes()) for n in IN_TAR])
    pq.write_table(pa.table({"pdf": [(SAMPLES / n).read_bytes() for n in IN_PARQUET]}), d / "docs.parquet")
    with server.environment():
        fs = server.fs()
        fs.mkdir("corpus")
        for n in LOOSE:
            fs.put(str(SAMPLES / n), f"corpus/loose/{n}")
        fs.put(str(d / "pdfa-000.tar"), "corpus/pdfa/pdfa-000.tar")
        fs.put(str(d / "docs.parquet"), "corpus/pq/docs.parquet")
    yield server
    server.stop()


def test_s3_inputs_give_the_pages_of_their_local_copies(s3, tmp_path):
    inputs = ["s3://corpus/loose/", "s3://corpus/pdfa/*.tar", "s3://corpus/pq/docs.parquet"]
    with s3.environment():
        remote = run_ingest(recipe(inputs, ocr=NEVER), tmp_path, tmp_path / "remote")
    local = run_ingest(recipe([SAMPLES / n for n in LOOSE + IN_TAR + IN_PARQUET], ocr=NEVER), SAMPLES,
                       tmp_path / "local")
    assert remote.rejects == 0 and remote.pages == local.pages and pages(tmp_path / "remote") == pages(tmp_path / "local")
    sources = {p["source"] for p in iter_pages(tmp_path / "remote", ["source"])}
    assert {"s3://corpus/loose/invoice.pdf", "s3://corpus/pdfa/pdfa-000.tar#annual_report.pdf",
            "s3://corpus/pq/docs.parquet#0"} <= sources
    with s3.environment():
        again = run_ingest(recipe(inputs, ocr=NEVER), tmp_path, tmp_path / "remote")
    assert again.tasks_skipped == again.tasks


def _cli(s3: S3, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docsynth.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **s3.env}, timeout=300)


def test_credentials_never_reach_output_and_403_404_name_the_url(s3, tmp_path):
    ok = _cli(s3, "ingest", "s3://corpus/pdfa/pdfa-000.tar", "--out", str(tmp_path / "ok"), "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["pages"] > 0
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "ok").rglob("*") if p.is_file()
                      and p.suffix in (".json", ".jsonl", ".yaml"))
    assert SECRET not in ok.stdout + ok.stderr + written

    missing = _cli(s3, "ingest", "s3://corpus/pdfa/nope.tar", "--out", str(tmp_path / "404"), cwd=tmp_path)
    assert missing.returncode == 1 and "s3://corpus/pdfa/nope.tar: not found (404)" in missing.stderr
    assert "Traceback" not in missing.stderr and SECRET not in missing.stderr

    with s3.refusing():
        refused = _cli(s3, "ingest", "s3://corpus/pdfa/pdfa-000.tar", "--out", str(tmp_path / "403"), cwd=tmp_path)
    assert refused.returncode == 1 and "s3://corpus/pdfa/pdfa-000.tar: access denied (403)" in refused.stderr
    assert "Traceback" not in refused.stderr and SECRET not in refused.stderr


class RangeHandler(SimpleHTTPRequestHandler):
    """A static file server that answers byte ranges, as object stores and CDNs do."""

    def log_message(self, *a):
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start, _, end = rng.removeprefix("bytes=").partition("-")
        start, end = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        import io

        return io.BytesIO(data[start:end + 1])


def test_http_inputs_are_read_by_ranges(tmp_path):
    pytest.importorskip("aiohttp")
    served = tmp_path / "www"
    served.mkdir()
    shard(served / "pdfa-000.tar", [(Path(n).stem, (SAMPLES / n).read_bytes()) for n in IN_TAR])
    (served / "invoice.pdf").write_bytes((SAMPLES / "invoice.pdf").read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: RangeHandler(*a, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        s = run_ingest(recipe([f"{base}/pdfa-000.tar", f"{base}/invoice.pdf"], ocr=NEVER), tmp_path, tmp_path / "out")
        local = run_ingest(recipe([SAMPLES / n for n in IN_TAR + ["invoice.pdf"]], ocr=NEVER), SAMPLES,
                           tmp_path / "local")
        assert s.rejects == 0 and s.pages == local.pages and pages(tmp_path / "out") == pages(tmp_path / "local")
        from docsynth.core.errors import DocsynthError

        with pytest.raises(DocsynthError, match=r"/nope\.tar: not found \(404\)"):
            run_ingest(recipe([f"{base}/nope.tar"], ocr=NEVER), tmp_path, tmp_path / "404")
    finally:
        server.shutdown()
        server.server_close()
    assert tarfile  # the shards above are real tar files


def test_hf_inputs_against_the_stand_in_hub(tmp_path):
    """hf://datasets/ORG/NAME/... through huggingface_hub's HfFileSystem, against the stand-in Hub
    the push tests use: a public repo's tar shard (by glob) and a loose PDF."""
    from tests.hubserver import Hub, git_sha1

    token = "hf_standin_token_for_tests_0123456789"
    shard(tmp_path / "pdfa-000.tar", [(Path(n).stem, (SAMPLES / n).read_bytes()) for n in IN_TAR])
    blobs = {"data/pdfa-000.tar": (tmp_path / "pdfa-000.tar").read_bytes(),
             "loose/invoice.pdf": (SAMPLES / "invoice.pdf").read_bytes()}
    with Hub(token) as hub:
        hub.repos["org/pdfa"] = {"private": False, "branches": {"main": {"commit": "c" * 40, "files": {
            p: {"size": len(b), "oid": git_sha1(b), "lfs": False, "content": b, "sha256": None} for p, b in blobs.items()}}}}
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": token}
        env.pop("HF_HUB_OFFLINE", None)
        res = subprocess.run([sys.executable, "-m", "docsynth.cli", "ingest", "hf://datasets/org/pdfa/data/*.tar",
                              "hf://datasets/org/pdfa/loose/invoice.pdf", "--out", str(tmp_path / "out"), "--json"],
                             capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        missing = subprocess.run([sys.executable, "-m", "docsynth.cli", "ingest", "hf://datasets/org/pdfa/data/nope.tar",
                                  "--out", str(tmp_path / "404")], capture_output=True, text=True, env=env, timeout=300)
    assert token not in res.stdout + res.stderr + missing.stdout + missing.stderr
    local = run_ingest(recipe([SAMPLES / n for n in IN_TAR + ["invoice.pdf"]], ocr=NEVER), SAMPLES, tmp_path / "local")
    assert json.loads(res.stdout)["pages"] == local.pages and pages(tmp_path / "out") == pages(tmp_path / "local")
    assert missing.returncode == 1 and "hf://datasets/org/pdfa/data/nope.tar: not found (404)" in missing.stderr


def test_transient_server_errors_are_retried_and_a_server_that_stays_down_is_named(tmp_path, monkeypatch):
    """503s and dropped connections are retried with backoff; past the retries, one message names
    the URL (the backoff shortened for the test)."""
    pytest.importorskip("aiohttp")
    from docsynth.core import remote
    from docsynth.core.errors import DocsynthError

    monkeypatch.setattr(remote, "BACKOFF_S", 0.01)
    served = tmp_path / "www"
    served.mkdir()
    shard(served / "pdfa-000.tar", [(Path(n).stem, (SAMPLES / n).read_bytes()) for n in IN_TAR])
    state = {"fail": 0, "failed": 0}

    class Flaky(RangeHandler):
        def send_head(self):
            if state["fail"] > 0:
                state["fail"] -= 1
                state["failed"] += 1
                self.send_error(503, "busy")
                return None
            return super().send_head()

    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Flaky(*a, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/pdfa-000.tar"
    try:
        state["fail"] = 3
        s = run_ingest(recipe([url], ocr=NEVER, workers=1), tmp_path, tmp_path / "out")
        assert state["failed"] == 3 and s.rejects == 0 and s.pages > 0
        state["fail"] = 10_000
        with pytest.raises(DocsynthError, match=r"pdfa-000\.tar: .*failed after 6 attempts"):
            run_ingest(recipe([url], ocr=NEVER, workers=1), tmp_path, tmp_path / "down")
    finally:
        server.shutdown()
        server.server_close()
