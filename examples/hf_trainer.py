"""HF Trainer on a docsynth mixture: `MixtureDataset.as_datasets()` hands accelerate the whole epoch
once (every row once per epoch on any number of processes), and `vlm_collate` makes the batches
(assistant-only labels, uint8 pixels; the Trainer moves them, so the collate normalises them on
the CPU here: compact=False).

    python examples/hf_trainer.py runs/mix HuggingFaceTB/SmolVLM-256M-Instruct out/ [--max-steps N]
    accelerate launch --num_processes 8 examples/hf_trainer.py ...
"""

import argparse

from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer, TrainingArguments

from docsynth.collate import vlm_collate
from docsynth.loader import MixtureDataset

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mixture")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args()

    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForImageTextToText.from_pretrained(args.model)
    train = MixtureDataset(args.mixture, seed=0, output="messages").as_datasets(num_shards=64)
    targs = TrainingArguments(output_dir=args.out, max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
                              remove_unused_columns=False, report_to=[], use_cpu=args.cpu, save_strategy="no",
                              logging_steps=1)
    trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=vlm_collate(processor, compact=False))
    trainer.train()
    trainer.save_model(args.out)
