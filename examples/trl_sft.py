"""TRL's SFTTrainer on a docsynth dataset in the messages view, with no glue: the export loads
with `datasets.load_dataset` as TRL's VLM SFT takes it, and TRL's own `assistant_only_loss`
trains on the answers only (the model's chat template needs {% generation %} markers).

    docsynth export runs/mix --format messages --out runs/mix-messages
    python examples/trl_sft.py runs/mix-messages HuggingFaceTB/SmolVLM-256M-Instruct out/ [--max-steps N]
"""

import argparse

from datasets import load_dataset
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import SFTConfig, SFTTrainer

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args()

    train = load_dataset(args.dataset, split="train")
    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForImageTextToText.from_pretrained(args.model)
    config = SFTConfig(output_dir=args.out, max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
                       assistant_only_loss=True, max_length=None, report_to=[], use_cpu=args.cpu, save_strategy="no",
                       logging_steps=1)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=processor)
    trainer.train()
    trainer.save_model(args.out)
