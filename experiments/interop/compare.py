"""Item-by-item comparison of eval.py and lm-evaluation-harness on the exported model (experiments/interop): for
each task, the prompts (identical?), the generated texts (identical?), and the accuracy under each harness's own
answer extraction, with every item where the two verdicts differ listed with both extractions. Writes
results.json next to this file.

    python experiments/interop/compare.py [--outputs outputs/interop]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).parent
PAIRS = {"arithmetic": "minimath_arithmetic", "gsm8k": "minimath_gsm8k_local"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def lm_eval_samples(root: Path, task: str) -> list[dict]:
    files = sorted(root.rglob(f"samples_{task}_*.jsonl"))
    if not files:
        raise SystemExit(f"no lm_eval samples for {task} under {root}")
    return sorted(read_jsonl(files[-1]), key=lambda s: s["doc_id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs/interop"))
    args = parser.parse_args()
    report = {}
    print(
        "| task | items | same prompt | prompts outside the compact vocabulary | same generated text | eval.py "
        "accuracy | lm_eval accuracy (filter) | verdicts differ |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for ours_name, theirs_name in PAIRS.items():
        ours = sorted(read_jsonl(args.outputs / "ours" / f"{ours_name}.jsonl"), key=lambda r: r["doc_id"])
        theirs = lm_eval_samples(args.outputs / "lm_eval", theirs_name)
        filters = sorted({s["filter"] for s in theirs})
        main_filter = "flexible-extract" if "flexible-extract" in filters else filters[0]
        chosen = [s for s in theirs if s["filter"] == main_filter]
        if len(ours) != len(chosen):
            raise SystemExit(f"{ours_name}: {len(ours)} items in eval.py, {len(chosen)} in lm_eval")
        same_prompt = sum(o["prompt"] == t["arguments"]["gen_args_0"]["arg_0"] for o, t in zip(ours, chosen))
        same_text = sum(o["output"] == t["resps"][0][0] for o, t in zip(ours, chosen))
        differ = [
            {
                "doc_id": o["doc_id"],
                "gold": o["gold"],
                "output": o["output"],
                "eval_py": o["extracted"],
                "lm_eval": t["filtered_resps"][0],
            }
            for o, t in zip(ours, chosen)
            if bool(o["correct"]) != bool(t["exact_match"])
        ]
        acc_ours = 100 * sum(o["correct"] for o in ours) / len(ours)
        summary = json.loads((args.outputs / "ours" / "results.json").read_text())["tasks"][ours_name]
        unknown = summary["protocol"].get("prompts_with_unknown_tokens", 0)
        acc_theirs = {f: 100 * sum(s["exact_match"] for s in theirs if s["filter"] == f) / len(ours) for f in filters}
        report[ours_name] = {
            "items": len(ours),
            "same_prompt": same_prompt,
            "same_text": same_text,
            "eval_py_accuracy": acc_ours,
            "lm_eval_accuracy": acc_theirs,
            "compared_filter": main_filter,
            "prompts_with_unknown_tokens": unknown,
            "verdicts_differ": differ,
        }
        theirs_cell = ", ".join(f"{v:.1f}% ({f})" for f, v in acc_theirs.items())
        print(
            f"| {ours_name} | {len(ours)} | {same_prompt} | {unknown} | {same_text} | {acc_ours:.1f}% | {theirs_cell} | "
            f"{len(differ)} (vs {main_filter}) |"
        )
    for name, r in report.items():
        for d in r["verdicts_differ"][:8]:
            print(
                f"{name} #{d['doc_id']}: gold {d['gold']!r}, output {d['output']!r}: eval.py read "
                f"{d['eval_py']!r}, lm_eval read {d['lm_eval']!r}"
            )
    (HERE / "results.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
