"""The items both evaluators read (experiments/interop): the checkpoint's own held-out sets, as eval.py draws them
(200 items, seed 0), written as local files for lm-evaluation-harness.

- `arithmetic.jsonl`: {question: "37 + 45 =", context: "Calculate:\\n" (the heading a training document writes
  before its lines), answer: "82"} — what `eval.py tasks=[arithmetic]` asks;
- `gsm8k_test.jsonl`: the held-out word problems in the public GSM8K format {question, answer: "...\\n#### N"}
  (the solution line is the gold's equation), read by `eval.py tasks=[gsm8k] task.path=...` and by lm_eval.

    python experiments/interop/make_items.py CKPT OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from minimath.checkpoint import CheckpointMeta, load_checkpoint
from minimath.config import CONF_DIR
from minimath.eval.modes import build_task
from minimath.io import atomic_write_bytes


def lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def main(ckpt: str, out: str) -> None:
    heldout = CheckpointMeta.of(load_checkpoint(ckpt)).heldout
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = {
        name: build_task(OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml"), heldout)
        for name in ("arithmetic", "word_problems")
    }
    atomic_write_bytes(
        out_dir / "arithmetic.jsonl",
        lines(
            [
                {"question": d.question, "context": d.context, "answer": d.gold, "category": d.category}
                for d in tasks["arithmetic"].docs
            ]
        ),
    )
    atomic_write_bytes(
        out_dir / "gsm8k_test.jsonl",
        lines(
            [
                {"question": d.question, "answer": f"The answer is {d.gold}.\n#### {d.gold}"}
                for d in tasks["word_problems"].docs
            ]
        ),
    )
    print(
        f"wrote {len(tasks['arithmetic'].docs)} arithmetic and {len(tasks['word_problems'].docs)} GSM8K-format "
        f"items to {out_dir}"
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
