"""Accuracy per operator of an `eval.py` arithmetic output file: `python per_operator.py arithmetic.jsonl`."""

import json
import sys
from collections import defaultdict

OPERATORS = ("+", "-", "×", "÷")


def main(path: str) -> None:
    right: dict[str, list[bool]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            op = next(o for o in OPERATORS if f" {o} " in row["prompt"])
            right[op].append(bool(row["correct"]))
    total = sum(sum(v) for v in right.values()) / sum(len(v) for v in right.values())
    print(
        "per operator: "
        + ", ".join(f"{op} {sum(right[op])}/{len(right[op])}" for op in OPERATORS if op in right)
        + f"; all {100 * total:.1f}%"
    )


if __name__ == "__main__":
    main(sys.argv[1])
