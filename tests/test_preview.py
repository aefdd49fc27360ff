"""`docsynth preview` inside a real terminal (tmux: the pane shows the image blocks and the text,
and keys page through samples) and without one (plain text), on datasets and a run's rejects."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import pytest

from docsynth.executors.local import run_write
from docsynth.preview import halfblock, kitty, sixel
from tests.dataset.test_write import make_recipe, run_dir  # noqa: F401  (the run fixture)
from tests.dataset.mixsources import picture
from tests.cli import invoke

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def preview(*args: str):
    return invoke("preview", *args)


def test_without_a_terminal_it_prints_plain_text(known):
    res = preview(str(known), "-n", "2")
    assert res.returncode == 0, res.stderr
    assert not ANSI.search(res.stdout)
    assert res.stdout.count("sample ") == 2 and "sample 1 of 20  source: alpha row:0" in res.stdout
    assert "[image 1/1: PNG 300x200, " in res.stdout and "Q: question ?\nA: " + "a" * 40 in res.stdout
    res = preview(str(known), "-n", "1", "--index", "12")
    assert "sample 13 of 20  source: beta row:2" in res.stdout and res.stdout.count("Q: ") == 3
    assert "[image 2/2: JPEG 1000x600" in res.stdout
    res = preview(str(known), "-n", "5", "--source", "gamma")
    assert res.stdout.count("sample ") == 4 and "alpha" not in res.stdout and "beta" not in res.stdout
    a, b = preview(str(known), "-n", "20", "--seed", "3").stdout, preview(str(known), "-n", "20", "--seed", "3").stdout
    order = re.findall(r"sample (\d+) of", a)
    assert a == b and sorted(map(int, order)) == list(range(1, 21)) and order != [str(i) for i in range(1, 21)]
    res = preview(str(known), "--index", "99")
    assert res.returncode == 1 and "--index 99 is out of range" in res.stderr


def test_rejects_of_a_run_with_reasons_and_pages(run_dir):  # noqa: F811 (the imported fixture)
    run_write(make_recipe(), run_dir)
    res = preview(str(run_dir), "--rejects", "-n", "50")
    assert res.returncode == 0, res.stderr
    for words in ("reject 1 of 12", "reason: code", "reason: unanswerable", "reason: grounded", "stage: filter",
                  "Q: Who is the treasurer of the board?", "[image 1/"):
        assert words in res.stdout, words
    assert preview(str(run_dir), "-n", "1").stdout.startswith("sample 1 of 4  source: docsynth:harbour")


def test_image_protocols():
    png = picture(64, 32, "PNG")
    cells = halfblock(png, cols=16, rows=8)
    assert cells.count("\n") == 3 and cells.count("▀") == 16 * 4 and "\x1b[38;2;200;10;10m" in cells  # 16x8 px
    k = kitty(png, cols=16, rows=8)
    assert k.startswith("\x1b_Ga=T,f=100,c=16,r=8,m=0;") and k.rstrip().endswith("\x1b\\")
    s = sixel(png, cols=16, rows=8)
    assert s.startswith('\x1bPq"1;1;') and s.rstrip().endswith("\x1b\\") and "#0;2;78;3;3" in s


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is installed by .ci/setup")
def test_in_tmux_images_are_drawn_and_keys_page(known, tmp_path):
    session = f"docsynth-preview-{tmp_path.name}"[-40:]
    done = tmp_path / "exit"
    cmd = f"{sys.executable} -m docsynth.cli preview {known} --width 30; echo $? > {done}; sleep 60"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "60", cmd], check=True)

    def screen(escapes: bool = False) -> str:
        return subprocess.run(["tmux", "capture-pane", "-t", session, "-p", *(["-e"] if escapes else [])],
                              capture_output=True, text=True).stdout

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 60  # the pane's content is the event; a loaded machine starts slowly
        while time.monotonic() < deadline:
            s = screen()
            if text in s:
                return s
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{screen()}")

    try:
        first = wait_for("n/space next")
        assert "sample 1 of 20" in first and "[image 1/1: PNG 300x200" in first and "Q: question ?" in first
        assert first.count("▀") >= 30 * 10  # the image, as half-blocks
        assert re.search(r"\x1b\[[0-9;]*38;2;200;10;10", screen(escapes=True))  # in its own colour
        subprocess.run(["tmux", "send-keys", "-t", session, "n"], check=True)
        assert "sample 2 of 20" in wait_for("sample 2 of 20")
        subprocess.run(["tmux", "send-keys", "-t", session, "p"], check=True)
        assert "sample 1 of 20" in wait_for("sample 1 of 20")
        # Keys typed faster than the samples draw are queued, not dropped (nor echoed on the picture).
        subprocess.run(["tmux", "send-keys", "-t", session, "n", "n", "n"], check=True)
        assert "sample 4 of 20" in wait_for("sample 4 of 20")
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if done.exists() and done.read_text().strip():
                break
            time.sleep(0.1)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
