"""A plain torch loop over a docsynth mixture with exact resume: MixtureDataset's loader records
the batches it handed out, so a restart from a checkpoint continues at exactly the next batch;
vlm_collate's uint8 pixels are normalised on the device.

    python examples/torch_loop.py runs/mix MODEL ckpt.pt --steps 100           # trains, checkpoints
    python examples/torch_loop.py runs/mix MODEL ckpt.pt --steps 100 --resume  # continues exactly
"""

import argparse
import json
import os

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from docsynth.collate import vlm_collate
from docsynth.loader import MixtureDataset

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mixture")
    ap.add_argument("model")
    ap.add_argument("checkpoint")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--log", help="append each step's row sources and loss here (JSON lines)")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"

    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForImageTextToText.from_pretrained(args.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    collate = vlm_collate(processor)
    loader = MixtureDataset(args.mixture, seed=0, output="messages").loader(
        batch_size=args.batch_size, num_workers=args.workers, collate_fn=collate, pin_memory=device == "cuda")
    step = 0
    if args.resume and os.path.exists(args.checkpoint):
        ckpt = torch.load(args.checkpoint, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        loader.load_state_dict(ckpt["data"])  # the next batch is exactly the one after the checkpoint
        step = ckpt["step"]
    for batch in loader:
        loss = model(**collate.to_device(batch, device)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        step += 1
        if args.log:
            with open(args.log, "a") as f:
                f.write(json.dumps({"step": step, "ids": batch["input_ids"].sum(dim=1).tolist(), "loss": loss.item()}) + "\n")
        if step % 2 == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "data": loader.state_dict(),
                        "step": step}, args.checkpoint)
        if step >= args.steps:
            break
