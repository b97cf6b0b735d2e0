"""What the interop scripts share: the command line (`--outputs`, where run.sh wrote) and the two models side by
side — our checkpoint and the transformers export of it, both fp32."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from minimath.eval.generation import load_for_inference

CHECKPOINT_FILE = "checkpoint.txt"  # run.sh writes the path of the checkpoint it exported there


def outputs_dir(doc: str) -> Path:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs/interop"))
    return parser.parse_args().outputs


def load_pair(outputs: Path):
    """(our model, our tokenizer, the exported transformers model, its tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = load_for_inference(Path((outputs / CHECKPOINT_FILE).read_text().strip()))
    hf = AutoModelForCausalLM.from_pretrained(outputs / "hf", dtype=torch.float32).eval()
    return model, tok, hf, AutoTokenizer.from_pretrained(outputs / "hf")
