"""Benchmark of the training-side data path, in one process: docsynth's loader against plain
pyarrow + PIL, the collate's bytes, and how well the loader keeps a training step fed.

    .venv/bin/python bench/loader.py [--rows 96] [--batch-size 8] [--workers 2] [--repeat 3] [--device cpu|cuda]
                                     [--model tiny|smolvlm] [--dataset DIR]

Rows are real pages: the sample PDFs rendered at 150 dpi as ingest stores them (JPEG), one QA
pair each, in a Cauldron dataset. Prints medians over --repeat passes:
1. loader alone: samples/s of MixtureDataset(output="messages") in a DataLoader (images decoded)
   vs a plain pyarrow + PIL loop over the same rows (ratio; target >= 0.95);
2. with the collate: samples/s of vlm_collate (uint8 pixels) and of the processor's float pixels
   (compact=False), and the pixel bytes per batch each sends from the workers;
3. fed ratio: training steps/s fed by the loader (workers, collate, to_device) against the same
   steps on batches made beforehand and already on the device (target >= 0.9).
--model tiny is the tests' Idefics3 (64-pixel tiles); smolvlm is a SmolVLM-256M-shaped Idefics3
with random weights (512-pixel tiles, up to 17 a page, 64 tokens each): the GPU measurement.
--dataset DIR keeps the rendered rows in DIR, or reads them from there when DIR/data exists:
a machine without pymupdf (the GPU machine) runs on rows made here. There it needs torch,
transformers, pyarrow, PIL, numpy, pyyaml and tqdm.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from docsynth.collate import vlm_collate  # noqa: E402
from docsynth.dataset.cauldron import SCHEMA, cauldron_row  # noqa: E402
from docsynth.loader import MixtureDataset  # noqa: E402


def make_dataset(d: Path, rows: int) -> Path:
    import pymupdf

    pages = []
    for pdf in sorted((ROOT / "sample_pdfs").glob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            pages += [p.get_pixmap(dpi=150).tobytes("jpeg", jpg_quality=90) for p in doc]
    (d / "data").mkdir(parents=True)
    table = [cauldron_row([pages[i % len(pages)]], [f"What does page {i} say?"], [f"Answer {i}"], "bench")
             for i in range(rows)]
    pq.write_table(pa.Table.from_pylist(table, schema=SCHEMA), d / "data" / "train-00000-of-00001.parquet",
                   row_group_size=16)
    return d


def smolvlm_shaped(d: Path) -> Path:
    """A SmolVLM-256M-shaped Idefics3 with random weights and the tests' small tokenizer."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, LlamaConfig
    from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
    from transformers.models.idefics3.processing_idefics3 import Idefics3Processor

    from tests.tiny_vlm import CHAT_TEMPLATE, build_tiny_vlm

    tiny = build_tiny_vlm(d / "tiny")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    images = Idefics3ImageProcessorPil(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512},
                                       do_image_splitting=True)
    Idefics3Processor(image_processor=images, tokenizer=tok, image_seq_len=64, chat_template=CHAT_TEMPLATE).save_pretrained(d / "smol")
    tok.save_pretrained(d / "smol")
    vision = Idefics3VisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                  image_size=512, patch_size=16)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    config = Idefics3Config(vision_config=vision.to_dict(), text_config=text.to_dict(),
                            image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=4)
    Idefics3ForConditionalGeneration(config).save_pretrained(d / "smol")
    return d / "smol"


def rate(n: int, t0: float) -> float:
    return n / (time.perf_counter() - t0)


def plain_pass(path: Path) -> float:
    """The plain loop: pyarrow row groups, PIL decoding, the same messages dicts."""
    from PIL import Image

    t0, n = time.perf_counter(), 0
    pf = pq.ParquetFile(next((path / "data").glob("*.parquet")))
    for g in range(pf.num_row_groups):
        for row in pf.read_row_group(g, columns=["images", "texts"]).to_pylist():
            images = [Image.open(io.BytesIO(im["bytes"])) for im in row["images"]]
            for im in images:
                im.load()
            n += 1
    return rate(n, t0)


def loader_pass(path: Path, workers: int, batch: int) -> float:
    ds = MixtureDataset(path, output="messages")

    def load_all(rows):  # decode, as the plain loop does
        for r in rows:
            for im in r["images"]:
                im.load()
        return len(rows)

    t0 = time.perf_counter()
    n = sum(ds.loader(batch_size=batch, num_workers=workers, collate_fn=load_all))
    return rate(n, t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="tiny", choices=["tiny", "smolvlm"])
    ap.add_argument("--dataset", type=Path, help="the rows' dataset: made here if DIR/data is absent, else read")
    args = ap.parse_args()
    from transformers import AutoProcessor, Idefics3ForConditionalGeneration

    from tests.tiny_vlm import build_tiny_vlm

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.dataset and (args.dataset / "data").is_dir():
            data = args.dataset
            args.rows = pq.ParquetFile(next((data / "data").glob("*.parquet"))).metadata.num_rows
        else:
            data = make_dataset(args.dataset or tmp / "ds", args.rows)
        model_dir = build_tiny_vlm(tmp / "vlm") if args.model == "tiny" else smolvlm_shaped(tmp)
        processor = AutoProcessor.from_pretrained(model_dir)
        print(f"{args.rows} rows of 150-dpi pages, batch {args.batch_size}, {args.workers} workers, model {args.model}, "
              f"{args.device}, medians of {args.repeat}", flush=True)

        plain = [plain_pass(data) for _ in range(args.repeat)]
        ours = [loader_pass(data, args.workers, args.batch_size) for _ in range(args.repeat)]
        p, o = statistics.median(plain), statistics.median(ours)
        print(f"1. loader alone: plain pyarrow + PIL {p:7.1f} samples/s   MixtureDataset {o:7.1f} samples/s   "
              f"ratio {o / p:.3f} (workers {args.workers})", flush=True)

        for compact in (True, False):
            collate = vlm_collate(processor, compact=compact)
            loader = MixtureDataset(data, output="messages").loader(batch_size=args.batch_size, num_workers=args.workers,
                                                                    collate_fn=collate)
            runs, nbytes = [], 0
            for _ in range(args.repeat):
                t0, n = time.perf_counter(), 0
                for b in loader:
                    n += b["input_ids"].shape[0]
                    nbytes = max(nbytes, b["pixel_values"].numel() * b["pixel_values"].element_size())
                runs.append(rate(n, t0))
            print(f"2. with vlm_collate({'uint8' if compact else 'float32'} pixels): {statistics.median(runs):7.1f} samples/s, "
                  f"up to {nbytes / 1e6:7.1f} MB of pixels a batch", flush=True)

        model = Idefics3ForConditionalGeneration.from_pretrained(model_dir).to(args.device)
        dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
        model = model.to(dtype)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        collate = vlm_collate(processor)

        def step(batch):
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        def sync():
            if args.device == "cuda":
                torch.cuda.synchronize()

        premade = [collate.to_device(b, args.device, dtype) for b in MixtureDataset(data, output="messages").loader(
            batch_size=args.batch_size, num_workers=args.workers, collate_fn=collate)]
        step(premade[0])  # warm-up
        fed, made = [], []
        for _ in range(args.repeat):
            sync()
            t0 = time.perf_counter()
            for b in premade:
                step(b)
            sync()
            made.append(rate(args.rows, t0))
            loader = MixtureDataset(data, output="messages").loader(batch_size=args.batch_size, num_workers=args.workers,
                                                                    collate_fn=collate, pin_memory=args.device == "cuda")
            t0 = time.perf_counter()
            for b in loader:
                step(collate.to_device(b, args.device, dtype))
            sync()
            fed.append(rate(args.rows, t0))
        m, f = statistics.median(made), statistics.median(fed)
        print(f"3. training steps: on pre-made batches {m:7.2f} samples/s   fed by the loader {f:7.2f} samples/s   "
              f"fed ratio {f / m:.3f} (target >= 0.9)", flush=True)


if __name__ == "__main__":
    main()
