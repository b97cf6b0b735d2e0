"""Logits parity of the exported default checkpoint (experiments/interop): our model and the transformers model
read from the export on random token batches (fp32), the largest absolute logit difference over our rows, and
greedy decoding of the held-out arithmetic prompts through both (`generate` of each library): the same text.

    python experiments/interop/parity.py [--outputs outputs/interop]
"""

from __future__ import annotations

import json

import torch
from pair import load_pair, outputs_dir

from minimath.eval.generation import GenerationConfig, generate


def main() -> None:
    outputs = outputs_dir(__doc__)
    model, tok, hf, _ = load_pair(outputs)
    x = torch.randint(0, tok.vocab_size, (8, model.config.max_seq_len), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (model(x) - hf(x).logits[..., : model.config.vocab_size]).abs().max().item()
    prompts = [json.loads(line)["prompt"] for line in (outputs / "ours" / "arithmetic.jsonl").open()]
    same = 0
    for text in prompts:
        ids = tok.encode(text)
        ours = generate(model, tok, [ids], GenerationConfig(max_new_tokens=16, stop_at_eot=False))[0]
        theirs = hf.generate(torch.tensor([ids]), max_new_tokens=16, min_new_tokens=16, do_sample=False)
        same += ours == tok.decode(theirs[0, len(ids) :].tolist())
    print(
        json.dumps(
            {
                "random_batches": list(x.shape),
                "max_abs_logit_difference": diff,
                "greedy_16_tokens_same_text": f"{same}/{len(prompts)}",
            }
        )
    )


if __name__ == "__main__":
    main()
