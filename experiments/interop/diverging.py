"""For items whose generated texts differ between eval.py and lm_eval (experiments/interop), why: whether the two
tokenizers gave the prompt the same ids (a prompt with text outside the compact vocabulary: ours writes unknown
ids, the export writes the pieces), how many unknown ids ours wrote, the first differing generated token, and the
margin between the top two logits there under our model and under the exported one fed the same ids (equal
margins: the two models agree, the inputs differed). Then, over every prompt of both tasks, what the exported
vocabulary's extra rows do to log-probabilities: the shift log(1 + extra_rows · p_unknown) of the normaliser.

    python experiments/interop/diverging.py [--outputs outputs/interop]
"""

from __future__ import annotations

import json

import torch
from pair import load_pair, outputs_dir


def logprob_shift(model, tok, prompts: list[str], extra_rows: int) -> dict:
    """The exported model's log-softmax is ours minus log(1 + extra_rows · p_unknown) (its extra columns repeat the
    unknown id's logit): that shift over every position of the prompts."""
    shifts = []
    for text in prompts:
        ids = torch.tensor([tok.encode(text)[-model.config.max_seq_len :]])
        with torch.no_grad():
            logits = model(ids)[0, :, : tok.vocab_size].float()
        p_unknown = logits.softmax(-1)[:, tok.unk_id]
        shifts.append(torch.log1p(extra_rows * p_unknown))
    s = torch.cat(shifts)
    return {
        "positions": s.numel(),
        "mean": float(s.mean()),
        "median": float(s.median()),
        "p99": float(s.quantile(0.99)),
        "max": float(s.max()),
    }


def main() -> None:
    outputs = outputs_dir(__doc__)
    model, tok, hf, hf_tok = load_pair(outputs)
    ours = {json.loads(line)["doc_id"]: json.loads(line) for line in (outputs / "ours" / "gsm8k.jsonl").open()}
    sample_file = sorted((outputs / "lm_eval").rglob("samples_minimath_gsm8k_local_*.jsonl"))[-1]
    theirs = {s["doc_id"]: s for s in map(json.loads, sample_file.open()) if s["filter"] == "flexible-extract"}
    for doc_id, o in sorted(ours.items()):
        a, b = tok.encode(o["output"]), tok.encode(theirs[doc_id]["resps"][0][0])
        if a == b:
            continue
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        ids = torch.tensor([(tok.encode(o["prompt"]) + a[:k])[-model.config.max_seq_len :]])
        with torch.no_grad():
            ours_top = model(ids)[0, -1, : tok.vocab_size].topk(2)
            hf_top = hf(ids).logits[0, -1, : tok.vocab_size].topk(2)
        prompt = tok.encode(o["prompt"])
        print(
            json.dumps(
                {
                    "doc_id": doc_id,
                    "same_prompt_ids": prompt == hf_tok(o["prompt"])["input_ids"],
                    "unknown_ids_in_our_prompt": tok.unknown_count(prompt),
                    "first_differing_token": k,
                    "eval_py_token": tok.decode(a[k : k + 1]),
                    "lm_eval_token": tok.decode(b[k : k + 1]),
                    "our_top2_margin": round(float(ours_top.values[0] - ours_top.values[1]), 6),
                    "hf_top2_margin": round(float(hf_top.values[0] - hf_top.values[1]), 6),
                },
                ensure_ascii=False,
            )
        )
    extra = json.loads((outputs / "hf" / "config.json").read_text())["minimath"]["extra_rows"]
    prompts = [o["prompt"] for o in ours.values()] + [
        json.loads(line)["prompt"] for line in (outputs / "ours" / "arithmetic.jsonl").open()
    ]
    print(json.dumps({"extra_rows": extra, "logprob_shift_nats": logprob_shift(model, tok, prompts, extra)}))


if __name__ == "__main__":
    main()
