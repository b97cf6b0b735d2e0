"""For items whose generated texts differ between eval.py and lm_eval (experiments/interop), where they part: the
first differing token, and the margin between our model's top two logits there (a near-tie that float rounding of
two implementations of the same function can flip), and the same margin under the exported transformers model.

    python experiments/interop/near_ties.py [--outputs outputs/interop]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from minimath.eval.generation import load_for_inference

CKPT = "outputs/nano-embedded/stage4-bs2.5K/checkpoints/final.ckpt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs/interop"))
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM

    model, tok = load_for_inference(CKPT)
    hf = AutoModelForCausalLM.from_pretrained(args.outputs / "hf", dtype=torch.float32).eval()
    ours = {json.loads(line)["doc_id"]: json.loads(line) for line in (args.outputs / "ours" / "gsm8k.jsonl").open()}
    sample_file = sorted((args.outputs / "lm_eval").rglob("samples_minimath_gsm8k_local_*.jsonl"))[-1]
    theirs = {s["doc_id"]: s for s in map(json.loads, sample_file.open()) if s["filter"] == "flexible-extract"}
    for doc_id, o in sorted(ours.items()):
        a, b = tok.encode(o["output"]), tok.encode(theirs[doc_id]["resps"][0][0])
        if a == b:
            continue
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        ids = torch.tensor([(tok.encode(o["prompt"]) + a[:k])[-model.cfg.max_seq_len:]])
        with torch.no_grad():
            ours_top = model(ids)[0, -1, :tok.vocab_size].topk(2)
            hf_top = hf(ids).logits[0, -1, :tok.vocab_size].topk(2)
        print(json.dumps({"doc_id": doc_id, "first_differing_token": k,
                          "eval_py_token": tok.decode(a[k:k + 1]), "lm_eval_token": tok.decode(b[k:k + 1]),
                          "our_top2_margin": round(float(ours_top.values[0] - ours_top.values[1]), 6),
                          "hf_top2_margin": round(float(hf_top.values[0] - hf_top.values[1]), 6)},
                         ensure_ascii=False))


if __name__ == "__main__":
    main()
