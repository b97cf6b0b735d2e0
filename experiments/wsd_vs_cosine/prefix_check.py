"""Check that the decay arms expressed in config are the stable run plus a decay: per seed, the training losses of
the stable arm's first N steps against those of the arm that decays from step N (branch160, branch240, wsd10 = a
decay from step 360). Equal to the last bit means the same weights, data and LR up to the branch point — what a
branch from the stable run's step-N checkpoint (`branch_from=`) would continue from. Writes prefix.json.

    python experiments/wsd_vs_cosine/prefix_check.py RUN_DIR [OUT.json]
"""

from __future__ import annotations

import sys
from pathlib import Path

from minimath.io import atomic_write_json
from minimath.report import collect
from minimath.tb import read_scalars

ARM = "arm/wsd_vs_cosine"
POINTS = {"branch160": 160, "branch240": 240, "wsd10": 360}


def main(root: Path, out: Path) -> None:
    runs, _ = collect(root, {"experiment": "wsd_vs_cosine"})
    losses = {(r.value(ARM), r.value("seed")): list(read_scalars(r.path / "tb", "train/loss").values()) for r in runs}
    rows = []
    for (arm, seed), values in sorted(losses.items()):
        if arm not in POINTS:
            continue
        stable, n = losses[("stable", seed)], POINTS[arm]
        identical = sum(a == b for a, b in zip(stable[:n], values[:n], strict=True))
        rows.append(
            {
                "arm": arm,
                "seed": seed,
                "prefix_steps": n,
                "identical_steps": identical,
                "max_abs_difference": max(abs(a - b) for a, b in zip(stable[:n], values[:n], strict=True)),
            }
        )
        print(
            f"seed {seed} {arm}: {identical}/{n} steps identical to the stable run's "
            f"(max |difference| {rows[-1]['max_abs_difference']:.3g})"
        )
    atomic_write_json(out, rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent / "prefix.json")
