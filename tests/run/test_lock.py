"""One writer per directory: while a process holds a directory, every docsynth command that writes
it fails at once, naming the holder, and changes nothing; a holder killed with SIGKILL leaves no
stale lock. Real processes: the holder is a child process, the commands are the real CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from docsynth.core.lock import LockedError, locked
from tests.conftest import SAMPLES
from tests.dataset.mixsources import cauldron_source

HOLD = ("import sys, time; from pathlib import Path; from docsynth.core.lock import locked\n"
        "with locked(*map(Path, sys.argv[1:])):\n    print('held', flush=True); time.sleep(600)\n")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docsynth.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.fixture
def holder():
    procs = []

    def hold(*dirs: Path) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", HOLD, *map(str, dirs)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "held"  # an event, not a sleep
        procs.append(p)
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()


def test_every_writing_command_refuses_a_held_directory_and_changes_nothing(tmp_path, holder):
    run = tmp_path / "run"
    out_mix = tmp_path / "mix"
    src = cauldron_source(tmp_path / "sources", "s", 20)
    (tmp_path / "m.yaml").write_text(f"sources: [{{name: s, path: {src}, repeat: 1}}]\n")
    p = holder(run, out_mix)
    before = sorted(x.name for x in run.iterdir())
    commands = {
        "ingest": ["ingest", str(SAMPLES / "invoice.pdf"), "--out", str(run), "--ocr", "never"],
        "generate": ["generate", str(run)],
        "write": ["write", str(run)],
        "run": ["run", str(tmp_path / "r.yaml"), "--out", str(run)],
        "mix": ["mix", str(tmp_path / "m.yaml"), "--out", str(out_mix)],
        "push": ["push", str(out_mix), "--repo-id", "org/x", "--dry-run"],
    }
    (tmp_path / "r.yaml").write_text(f"inputs: {{paths: ['{SAMPLES / 'invoice.pdf'}']}}\n")
    for name, args in commands.items():
        res = cli(*args, cwd=tmp_path)
        assert res.returncode == 1, (name, res.stderr[-2000:])
        assert f"is being written by pid {p.pid} on {socket.gethostname()}" in res.stderr, (name, res.stderr[-2000:])
        assert "Traceback" not in res.stderr
    assert sorted(x.name for x in run.iterdir()) == before  # nothing was written
    assert not (out_mix / "data").exists()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    out = tmp_path / "pages"
    p = holder(out)
    args = ["ingest", str(SAMPLES / "invoice.pdf"), "--out", str(out), "--ocr", "never", "--json"]
    assert cli(*args, cwd=tmp_path).returncode == 1
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["pages"] == 1
    held = json.loads((out / ".docsynth.lock").read_text() or "{}")
    assert held == {}  # released: nobody holds it now


def test_a_process_may_take_its_own_lock_again_and_another_may_not(tmp_path):
    d = tmp_path / "d"
    with locked(d):
        with locked(d, tmp_path / "e"):
            info = json.loads((d / ".docsynth.lock").read_text())
            assert info["pid"] == os.getpid()
        res = subprocess.run([sys.executable, "-c", f"from docsynth.core.lock import locked\nwith locked({str(d)!r}): pass"],
                             capture_output=True, text=True)
        assert res.returncode == 1 and "LockedError" in res.stderr and f"pid {os.getpid()}" in res.stderr
    with locked(tmp_path / "missing", create=False):
        assert not (tmp_path / "missing").exists()
    with pytest.raises(LockedError):
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(d)], stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "held"
            with locked(d):
                pass
        finally:
            p.kill()
            p.wait()
