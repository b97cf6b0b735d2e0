"""Make the synthesized data of experiment=jiuzhang_synthesis, per seed, through the project's own commands.

JiuZhang3.0's order at CPU scale, for each seed of experiment=robust_default (its fp32 curriculum):
  1. teacher-random: the teacher (teacher=oracle, the stand-in for GPT-4) answers N random texts of a candidate pool
     (arm b's data; its instruction pairs are the first KD round).
  2. kd-random: the small synthesis model — the seed's fp32 stage-4 checkpoint (the lab's best model at this size,
     as JiuZhang3.0 starts from a pre-trained math model) fine-tuned on those N pairs (`data=jiuzhang_kd`,
     `init_vocab=extend`).
  3. select-influence / select-ngram: the N most valuable texts of the pool for the target task (linear equations),
     ranked by gradient influence under kd-random (the warm-up synthesis model) or by TF-IDF n-gram similarity.
  4. teacher-influence / teacher-ngram, then kd-influence / kd-ngram: the teacher on those N texts, a synthesis model
     fine-tuned on each (the second KD round, from the same stage-4 checkpoint).
  5. synth-random / synth-influence / synth-ngram: each synthesis model writes for the same M other texts; its
     verified problems are arms c, d and e.
Every command is printed before it runs and resumes where it stopped (answer cache, finished stages, feature cache),
so re-running this script after an interruption redoes nothing. Then the arms train as one Hydra sweep:
    python train.py -m experiment=jiuzhang_synthesis paths.runs=RUNS data.synthesis_root=OUT

    python experiments/jiuzhang_synthesis/make_data.py --runs /tmp/robust/runs --out outputs/jiuzhang_synthesis
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from minimath.runs import finished_stages

ROOT = Path(__file__).resolve().parents[2]
SELECTIONS = ("influence", "ngram")
ARMS = ("random", *SELECTIONS)


def run(cmd: list[str], log: Path) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    with log.open("a") as f:
        f.write("+ " + shlex.join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=True)


def curriculum_stage(runs: Path, seed: int, stage: int) -> Path:
    """The final checkpoint of `stage` in the fp32 robust-default curriculum of `seed` (its fingerprint says so)."""
    found = []
    for stage_dir, final in finished_stages(runs / "nano-embedded", stage).items():
        recorded = json.loads((stage_dir / "fingerprint.json").read_text())
        values, overrides = recorded["values"], recorded["overrides"]
        forked = any(o.startswith("+arm/") for o in overrides)  # another experiment's arm, not the curriculum
        if values.get("seed") == seed and values.get("hardware.precision") == "32-true" and not forked:
            found.append(final)
    if len(found) != 1:
        sys.exit(f"error: {len(found)} fp32 robust-default stage-{stage} checkpoints of seed {seed} in {runs}")
    return found[0]


def only_final(run_dir: Path) -> Path:
    found = list(finished_stages(run_dir, 1).values())
    if len(found) != 1:
        sys.exit(f"error: {run_dir} holds {len(found)} finished stage-1 runs, expected one")
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, required=True, help="paths.runs of experiment=robust_default")
    ap.add_argument("--out", type=Path, default=Path("outputs/jiuzhang_synthesis"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--n", type=int, default=256, help="teacher calls per KD round (N)")
    ap.add_argument("--pool", type=int, default=1024, help="candidate texts the N are chosen from")
    ap.add_argument("--m", type=int, default=1536, help="other texts each synthesis model writes for (M)")
    ap.add_argument("--kd-tokens", type=int, default=150_000, help="about 5 passes over the verified pairs of N=256")
    ap.add_argument("--max-chars", type=int, default=120, help="seed texts are truncated to this many characters")
    args = ap.parse_args()
    for seed in args.seeds:
        make_seed(args, seed)
    print(f"data ready: python train.py -m experiment=jiuzhang_synthesis data.synthesis_root={args.out.resolve()}")


def make_seed(args: argparse.Namespace, seed: int) -> None:
    py = sys.executable
    out = (args.out / f"s{seed}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    stage4 = curriculum_stage(args.runs.resolve(), seed, 4)
    pool = [
        f"seed={seed}",
        f"seeds.source.seed={1000 + seed}",
        f"seeds.source.documents_count={args.pool}",
        f"seeds.max_chars={args.max_chars}",
        f"cache_dir={out / 'cache'}",
    ]

    def teacher(arm: str, *how: str) -> None:
        run([py, "-m", "minimath.synthesize", "teacher=oracle", *pool, *how, f"out={out / f'teacher-{arm}'}"], log)

    def kd(arm: str) -> Path:
        run_name = f"kd-{arm}"
        run(
            [
                py, "train.py", "data=jiuzhang_kd", f"data.pairs={out / f'teacher-{arm}' / 'kd'}/*.jsonl",
                "stage=1", f"seed={seed}", f"init_from={stage4}", "init_vocab=extend", "model.max_seq_len=320",
                f"train.max_tokens={args.kd_tokens}", "data.sources.kd_pairs.heldout_fraction=0.1",
                "hardware.precision=32-true", f"paths.runs={out / 'runs'}", f"run_name={run_name}",
                f"data.dir={out / 'prepared' / run_name}", "callbacks.heldout_loss.every_n_steps=10",
            ],
            log,
        )  # fmt: skip
        return only_final(out / "runs" / run_name)

    def synthesize_with(arm: str, ckpt: Path) -> None:
        run(
            [
                py, "-m", "minimath.synthesize", "teacher=checkpoint", f"ckpt={ckpt}", f"seed={seed}",
                f"seeds.source.seed={2000 + seed}", f"seeds.source.documents_count={args.m}",
                f"seeds.count={args.m}", f"seeds.max_chars={args.max_chars}", "sampling.max_tokens=128",
                "teacher.client.batch_size=32", f"cache_dir={out / 'cache'}", f"out={out / f'synth-{arm}'}",
            ],
            log,
        )  # fmt: skip

    teacher("random", f"seeds.count={args.n}")
    warmup = kd("random")
    for method in SELECTIONS:
        run(
            [
                py, "-m", "minimath.select", f"method={method}", f"ckpt={warmup}", f"seed={seed}",
                f"candidates.source.seed={1000 + seed}", f"candidates.source.documents_count={args.pool}",
                f"candidates.count={args.pool}", f"candidates.max_chars={args.max_chars}",
                f"top_k={args.n}", "top_fraction=null", f"out={out / f'select-{method}'}",
                f"cache_dir={out / 'select-cache'}",
            ],
            log,
        )  # fmt: skip
        teacher(method, "seeds.count=null", f"seeds.selection={out / f'select-{method}' / 'selected.jsonl'}")
    for arm in ARMS:
        synthesize_with(arm, warmup if arm == "random" else kd(arm))


if __name__ == "__main__":
    main()
