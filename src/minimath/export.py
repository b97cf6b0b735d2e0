"""Export a checkpoint as a transformers model directory (see `minimath.hf` for what maps to what).

    python -m minimath.export ckpt=PATH out=DIR [dtype=fp32|bf16]

DIR then loads offline with no custom code: `AutoModelForCausalLM.from_pretrained(DIR)` (Llama, or Qwen3 for a
QK-norm model), `AutoTokenizer.from_pretrained(DIR)` (a fast tokenizer with our ids and the report protocol's chat
template), and `GenerationConfig` with the end-of-text token as eos. The directory is written under a temporary
name and renamed when complete; an existing DIR is an error, never overwritten in part.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

from minimath.errors import UserError, exit_on_user_error
from minimath.eval.generation import load_for_inference
from minimath.hf import hf_config, save_hf_tokenizer, to_hf_state
from minimath.tokenizer import CompactTokenizer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def export(ckpt: Path, out: Path, dtype: str = "fp32") -> Path:
    """Write the transformers directory of `ckpt` to `out`; returns `out`."""
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise UserError(f"export: dtype={dtype}; choose one of {', '.join(DTYPES)}")
    out = Path(out)
    if out.exists():
        raise UserError(f"export: {out} already exists; remove it or choose another out=")
    model, tokenizer = load_for_inference(ckpt)
    rows = model.config.vocab_size
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        extra = save_hf_tokenizer(tokenizer, rows, tmp, model.config.max_seq_len)
        unk = tokenizer.unk_id if isinstance(tokenizer, CompactTokenizer) else None
        state = {k: v.to(DTYPES[dtype]) for k, v in to_hf_state(model, extra, unk).items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        hf = hf_config(model.config, rows + extra, tokenizer.eot_id, DTYPES[dtype])
        hf["minimath"].update({"checkpoint": str(ckpt), "vocab_rows": rows, "extra_rows": extra})
        (tmp / "config.json").write_text(json.dumps(hf, indent=2) + "\n")
        generation = {
            "eos_token_id": tokenizer.eot_id,
            "bos_token_id": None,
            "pad_token_id": tokenizer.eot_id,
            "do_sample": False,
        }
        (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        for path in tmp.iterdir():  # mkdtemp's directory is private; the export is an ordinary one
            path.chmod(0o666 & ~umask)
        tmp.chmod(0o777 & ~umask)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@exit_on_user_error
def main(argv: list[str]) -> None:
    args = OmegaConf.from_cli(argv)
    if "ckpt" not in args or "out" not in args:
        raise UserError("usage: python -m minimath.export ckpt=PATH out=DIR [dtype=fp32|bf16]")
    out = export(Path(str(args.ckpt)), Path(str(args.out)), str(args.get("dtype", "fp32")))
    print(f"exported {args.ckpt} -> {out} (transformers; AutoModelForCausalLM / AutoTokenizer.from_pretrained)")


if __name__ == "__main__":
    main(sys.argv[1:])
