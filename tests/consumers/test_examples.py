"""The documented consumers (examples/), each run as a user would, on the CPU with the tiny Idefics3
built offline: TRL's SFTTrainer on a `docsynth export` with no glue (labels exactly the answers
and their end of turn), HF Trainer on `as_datasets()` with `vlm_collate`, and a plain torch loop
whose restart from a checkpoint continues at exactly the next batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docsynth.dataset.export import export
from tests.dataset.test_export import make
from tests.tiny_vlm import build_tiny_vlm

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("vlm"))


def example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_trl_sft_trainer_takes_an_export_with_no_glue(tiny, tmp_path):
    pytest.importorskip("trl")
    import datasets
    from transformers import AutoProcessor, Idefics3ForConditionalGeneration
    from trl import SFTConfig, SFTTrainer

    export(make(tmp_path / "ds"), tmp_path / "msgs")
    res = example("trl_sft.py", str(tmp_path / "msgs"), str(tiny), str(tmp_path / "out"), "--max-steps", "2", "--cpu",
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "out" / "config.json").exists()
    # The labels TRL trains on: exactly each answer and its end of turn, nothing of the prompt.
    train = datasets.load_dataset(str(tmp_path / "msgs"), split="train")
    processor = AutoProcessor.from_pretrained(tiny)
    trainer = SFTTrainer(model=Idefics3ForConditionalGeneration.from_pretrained(tiny), train_dataset=train,
                         processing_class=processor,
                         args=SFTConfig(output_dir=str(tmp_path / "o2"), assistant_only_loss=True, max_length=None,
                                        report_to=[], use_cpu=True))
    batch = trainer.data_collator([train[0], train[1]])
    decoded = [processor.tokenizer.decode(lab[lab != -100]) for lab in batch["labels"]]
    assert decoded == ["A0a<|end|>\nA0b<|end|>\n", "A1a<|end|>\nA1b<|end|>\n"]


def test_hf_trainer_on_as_datasets_with_vlm_collate(tiny, tmp_path):
    res = example("hf_trainer.py", str(make(tmp_path / "ds")), str(tiny), str(tmp_path / "out"), "--max-steps", "2",
                  "--cpu", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "out" / "config.json").exists()


def test_a_plain_torch_loop_resumes_at_exactly_the_next_batch(tiny, tmp_path):
    src = str(make(tmp_path / "ds", n=12))
    whole = example("torch_loop.py", src, str(tiny), str(tmp_path / "a.pt"), "--steps", "4", "--log",
                    str(tmp_path / "a.jsonl"), cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    first = example("torch_loop.py", src, str(tiny), str(tmp_path / "b.pt"), "--steps", "2", "--log",
                    str(tmp_path / "b.jsonl"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = example("torch_loop.py", src, str(tiny), str(tmp_path / "b.pt"), "--steps", "4", "--resume", "--log",
                    str(tmp_path / "b.jsonl"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [x["step"] for x in b] == [1, 2, 3, 4]
    assert [x["ids"] for x in b] == [x["ids"] for x in a]  # the same batches, the restart included
    assert all(abs(x["loss"] - y["loss"]) < 1e-4 for x, y in zip(a, b))
