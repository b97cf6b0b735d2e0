"""One report layer for every experiment: a multirun directory in, a table with honest error bars out.

    python -m minimath.report DIR [--where stage=4] [--by KEY ...] [--metric PATTERN ...] [--baseline K=V[,K=V]]
                                  [--compare PATTERN ...] [--tail 20] [--window TOKENS] [--out DIR/report]

A *run* is a job directory under DIR: one holding Hydra's `.hydra/overrides.yaml` and at least one of
- `heldout.json` — the held-out evaluation of the stage's final checkpoint (`heldout/<set>` in %, `heldout/<set>[+]`
  per operator, `heldout/final_loss`, `heldout/tokens_seen`);
- `tb/` — TensorBoard scalars: `tb/<tag>` is a tag's last value, `tb/<tag>@tail<N>` the mean of its last N values
  (a training loss is noisy per step: compare tails, over equal windows), `tb/<tag>@window<T>` (with `--window T`)
  the mean of the values logged over the last T tokens (scalars are logged against tokens seen: runs with different
  batch sizes compare over the same tokens, not the same number of steps), `tb/<tag>@first`, `tb/<tag>@max` and
  `tb/<tag>@rise` (the highest value minus the first: how far a loss was knocked up from where the run started);
- `results.json` — a job's own flat numbers (`results/<key>`).
A directory with overrides but none of these is counted and named ("no metrics"), not silently dropped.

Runs are grouped by the keys that differ between them (or `--by`), `seed` being the replicate key: each group gets
mean ± sample std over its runs, and each other group is compared with the baseline group (`--baseline`, else the
first): the difference of means with a 95% t interval and a p-value — a **paired t-test** over seeds both groups
have when their seed sets are equal (the seeds pair the runs: same initialisation and data order), else **Welch's
t-test**. With 3 seeds a t-test has 2 degrees of freedom: the interval is wide, which is the point.

`--by` may also name a provenance fact (`precision`, `cpu`, ...): a run's provenance (`minimath.provenance`: git
commit, resolved precision, CPU and its bf16 support, torch, threads) comes from the stage's `provenance.json`; a
run trained before it existed takes its precision from `train.log` and says "not recorded" for the rest.

Writes `report.md`, `report.png` (error bars: ±1 sample std over the group's runs; dots: the runs) and
`results.json` (every run's every value, its overrides and provenance; the groups; the comparisons), atomically.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from minimath import provenance
from minimath.errors import UserError
from minimath.io import atomic_write_bytes, atomic_write_json

REPLICATE = "seed"
DEFAULT_METRICS = ("heldout/*", "tb/train/loss@tail*", "results/*")
OVERRIDES = Path(".hydra") / "overrides.yaml"
NOT_SET = "(default)"


@dataclass
class Run:
    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float]
    provenance: dict = field(default_factory=dict)

    def value(self, key: str) -> str:
        """The run's value of `key`: its override, else a provenance fact, else "(default)"."""
        if key in self.overrides:
            return self.overrides[key]
        if key in self.provenance:
            return str(self.provenance[key])
        return NOT_SET


def parse_overrides(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, _, value = str(line).lstrip("+~").partition("=")
        out[key] = value
    return out


def heldout_metrics(path: Path) -> dict[str, float]:
    row = json.loads(path.read_text())["row"]
    out = {}
    for key, value in row.items():
        if key in ("stage", "batch") or not isinstance(value, int | float):
            continue
        out[f"heldout/{key}"] = float(value) if key in ("final_loss", "tokens_seen") else 100.0 * value
    return out


def tb_metrics(tb_dir: Path, tail: int, window: int | None = None) -> dict[str, float]:
    from minimath.tb import read_all_scalars

    out = {}
    for tag, steps in read_all_scalars(tb_dir).items():
        values = list(steps.values())
        out[f"tb/{tag}"] = values[-1]
        out[f"tb/{tag}@first"], out[f"tb/{tag}@max"] = values[0], max(values)
        out[f"tb/{tag}@rise"] = max(values) - values[0]
        if tag.startswith("train/") and len(values) >= tail:
            out[f"tb/{tag}@tail{tail}"] = statistics.fmean(values[-tail:])
        if tag.startswith("train/") and window:
            last = max(steps)
            if last - min(steps) >= window:  # the run logged over at least the window
                out[f"tb/{tag}@window{window}"] = statistics.fmean(v for s, v in steps.items() if s > last - window)
    return out


def results_metrics(path: Path) -> dict[str, float]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise UserError(f"{path}: a job's results.json must be a JSON object of numbers")
    return {f"results/{k}": float(v) for k, v in data.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def logged_precision(run_dir: Path) -> str | None:
    """The precision a run printed in its plan (`train.log`: "precision bf16-mixed (...)"), for runs without a
    provenance record."""
    log_file = run_dir / "train.log"
    if not log_file.is_file():
        return None
    match = re.search(r"^\s*precision (\S+) \(", log_file.read_text(errors="replace"), re.MULTILINE)
    return match.group(1) if match else None


def run_provenance(run_dir: Path) -> dict:
    facts = provenance.summary(provenance.read(run_dir))
    if facts["precision"] == "not recorded" and (logged := logged_precision(run_dir)):
        facts["precision"] = logged
    return facts


def collect(
    root: Path, where: dict[str, str] | None = None, tail: int = 20, window: int | None = None
) -> tuple[list[Run], list[str]]:
    """Every run under `root` whose values match `where`, and the job directories that had no metrics."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory (a multirun directory: python train.py -m ... writes one)")
    runs, empty = [], []
    for overrides_file in sorted(root.rglob(str(OVERRIDES))):
        run_dir = overrides_file.parent.parent
        if (root / "report") in run_dir.parents:
            continue
        overrides = parse_overrides(yaml.safe_load(overrides_file.read_text()) or [])
        run = Run(run_dir, overrides, {}, run_provenance(run_dir))
        if where and any(run.value(k) != v for k, v in where.items()):
            continue
        if (run_dir / "heldout.json").is_file():
            run.metrics.update(heldout_metrics(run_dir / "heldout.json"))
        if (run_dir / "tb").is_dir():
            run.metrics.update(tb_metrics(run_dir / "tb", tail, window))
        if (run_dir / "results.json").is_file():
            run.metrics.update(results_metrics(run_dir / "results.json"))
        (runs if run.metrics else empty).append(run if run.metrics else str(run_dir))
    return runs, empty


def natural(value: str) -> tuple:
    """Sort key: numbers by value (`lr=0.01` after `lr=0.005`), names with their digits as numbers (`w64` before
    `w128`)."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", value)))


def varying_keys(runs: list[Run], replicate: str = REPLICATE) -> list[str]:
    """The override keys whose values differ between runs (what the sweep varied), the replicate key aside."""
    keys = sorted({k for r in runs for k in r.overrides} - {replicate})
    return [k for k in keys if len({r.value(k) for r in runs}) > 1]


def matches(name: str, patterns: list[str]) -> bool:
    """A metric named exactly (`heldout/arithmetic[+]`: its brackets are not a character class), or by a pattern."""
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def select_metrics(runs: list[Run], patterns: list[str]) -> list[str]:
    names = sorted({m for r in runs for m in r.metrics})
    chosen = [n for n in names if matches(n, patterns)]
    if not chosen:
        raise UserError(
            f"no metric matches {', '.join(patterns)}; the runs have: {', '.join(names[:30])}"
            + (" ..." if len(names) > 30 else "")
        )
    return chosen


def group_label(values: tuple[str, ...], by: list[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(by, values, strict=True)) if by else "all runs"


def summarise(values: list[float]) -> dict:
    n = len(values)
    mean = statistics.fmean(values) if n else math.nan
    std = statistics.stdev(values) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std}


def compare(a: dict[str, float], b: dict[str, float]) -> dict:
    """Group b against baseline a ({replicate: value} each): the difference of means b − a, its 95% t interval
    and two-sided p-value — paired over seeds when both have the same seeds, else Welch's (Satterthwaite degrees of
    freedom). Fewer than 2 runs on a side: no test."""
    from scipy import stats

    xa, xb = list(a.values()), list(b.values())
    diff = statistics.fmean(xb) - statistics.fmean(xa)
    out = {"difference": diff, "test": "none (n < 2)", "df": math.nan, "p": math.nan, "ci95": [math.nan, math.nan]}
    if set(a) == set(b) and len(a) >= 2:
        d = [b[s] - a[s] for s in sorted(a)]
        se, df, test = statistics.stdev(d) / math.sqrt(len(d)), len(d) - 1, "paired t"
    elif len(xa) >= 2 and len(xb) >= 2:
        va, vb = statistics.variance(xa) / len(xa), statistics.variance(xb) / len(xb)
        se, test = math.sqrt(va + vb), "Welch t"
        df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if va + vb > 0 else len(xa) + len(xb) - 2
    else:
        return out
    if se > 0:
        p, half = float(2 * stats.t.sf(abs(diff) / se, df)), float(stats.t.ppf(0.975, df)) * se
    else:  # no spread at all: the difference is exact
        p, half = (1.0 if diff == 0 else 0.0), 0.0
    return {**out, "test": test, "df": df, "p": p, "ci95": [diff - half, diff + half]}


@dataclass
class Report:
    root: Path
    runs: list[Run]
    empty: list[str]
    by: list[str]
    metrics: list[str]
    baseline: tuple[str, ...]
    groups: dict[tuple[str, ...], list[Run]]
    compared: list[str] | None = None  # the metrics compared with the baseline (None: all; []: none)

    def per_group(self, key: tuple[str, ...], metric: str) -> dict[str, float]:
        """{replicate value: metric} over the group's runs that have the metric."""
        out = {}
        for run in self.groups[key]:
            if metric in run.metrics:
                seed = run.value(REPLICATE)
                if seed in out:
                    raise UserError(
                        f"two runs of group {group_label(key, self.by)} have {REPLICATE}={seed} "
                        f"({run.path}): group by the key that tells them apart (--by)"
                    )
                out[seed] = run.metrics[metric]
        return out

    def summaries(self) -> dict:
        return {
            group_label(key, self.by): {m: summarise(list(self.per_group(key, m).values())) for m in self.metrics}
            for key in self.groups
        }

    def comparisons(self) -> list[dict]:
        out = []
        for key in self.groups:
            if key == self.baseline:
                continue
            for metric in self.metrics if self.compared is None else self.compared:
                a, b = self.per_group(self.baseline, metric), self.per_group(key, metric)
                if a and b:
                    out.append({"group": group_label(key, self.by), "metric": metric, **compare(a, b)})
        return out


def build(
    root: Path,
    where: dict[str, str] | None = None,
    by: list[str] | None = None,
    metrics: list[str] | None = None,
    baseline: dict[str, str] | None = None,
    tail: int = 20,
    compare_only: list[str] | None = None,
    window: int | None = None,
) -> Report:
    runs, empty = collect(root, where, tail, window)
    if not runs:
        raise UserError(f"no run with metrics under {root}" + (f" matching {where}" if where else ""))
    keys = list(by) if by is not None else varying_keys(runs)
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in sorted(runs, key=lambda r: (tuple(natural(r.value(k)) for k in keys), natural(r.value(REPLICATE)))):
        groups.setdefault(tuple(run.value(k) for k in keys), []).append(run)
    if baseline:
        unknown = set(baseline) - set(keys)
        if unknown:
            raise UserError(f"--baseline names {', '.join(sorted(unknown))}, not a grouping key ({', '.join(keys)})")
        base = tuple(baseline.get(k) for k in keys)
        if base not in groups:
            raise UserError(f"--baseline {baseline}: no such group; groups: {[group_label(g, keys) for g in groups]}")
    else:
        base = next(iter(groups))
    chosen = select_metrics(runs, list(metrics or DEFAULT_METRICS))
    compared = None if compare_only is None else [m for m in chosen if matches(m, compare_only)]
    if compare_only and not compared:
        raise UserError(f"--compare {' '.join(compare_only)} matches none of the reported metrics")
    return Report(Path(root), runs, empty, keys, chosen, base, groups, compared)


def fmt(value: float, metric: str) -> str:
    if math.isnan(value):
        return "–"
    if "tokens" in metric:
        return f"{value:,.0f}"
    return f"{value:.1f}" if metric.startswith("heldout/") and "loss" not in metric else f"{value:.4g}"


def markdown(report: Report) -> str:
    summaries = report.summaries()
    lines = [
        f"# Report: {report.root}",
        "",
        f"{len(report.runs)} runs in {len(report.groups)} group(s), grouped by "
        f"{', '.join(report.by) or 'nothing'}; replicates: `{REPLICATE}`. Cells: mean ± sample std (n).",
    ]
    if report.empty:
        lines.append(
            f"{len(report.empty)} job director{'y' if len(report.empty) == 1 else 'ies'} had no metrics: "
            + ", ".join(report.empty)
        )
    lines += ["", "| group | " + " | ".join(report.metrics) + " |", "|---|" + "---|" * len(report.metrics)]
    for label, cells in summaries.items():
        row = []
        for m in report.metrics:
            s = cells[m]
            spread = f" ± {fmt(s['std'], m)}" if not math.isnan(s["std"]) else ""
            row.append(f"{fmt(s['mean'], m)}{spread} ({s['n']})" if s["n"] else "–")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    comparisons = report.comparisons()
    if comparisons:
        lines += [
            "",
            f"Against the baseline ({group_label(report.baseline, report.by)}): difference of means, its 95% t "
            "interval and the two-sided p-value (paired t over the seeds both have, else Welch's t).",
            "",
            "| group | metric | difference | 95% interval | test | p |",
            "|---|---|---|---|---|---|",
        ]
        for c in comparisons:
            lo, hi = c["ci95"]
            lines.append(
                f"| {c['group']} | {c['metric']} | {c['difference']:+.4g} | "
                + (f"[{lo:+.4g}, {hi:+.4g}]" if not math.isnan(lo) else "–")
                + f" | {c['test']} | "
                + (f"{c['p']:.3g}" if not math.isnan(c["p"]) else "–")
                + " |"
            )
    lines += ["", "Provenance:", "", "| run | " + " | ".join(provenance.FACTS) + " |"]
    lines.append("|---|" + "---|" * len(provenance.FACTS))
    for run in report.runs:
        facts = [str(run.provenance.get(f, "not recorded")) for f in provenance.FACTS]
        if re.fullmatch(r"[0-9a-f]{40}", facts[0]):
            facts[0] = facts[0][:10]
        lines.append(f"| {run.path.relative_to(report.root)} | " + " | ".join(facts) + " |")
    return "\n".join(lines) + "\n"


def figure(report: Report) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report.metrics[:12]
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    labels = [group_label(k, report.by) for k in report.groups]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for i, key in enumerate(report.groups):
            values = list(report.per_group(key, metric).values())
            if not values:
                continue
            s = summarise(values)
            ax.bar(i, s["mean"], color="#9ecae1", yerr=None if math.isnan(s["std"]) else s["std"], capsize=4)
            ax.scatter([i] * len(values), values, color="#08519c", s=12, zorder=3)
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    return png_bytes(fig, "bars: mean; error bars: ±1 sample std over the group's runs (seeds); dots: runs")


def png_bytes(fig, title: str) -> bytes:
    """A report figure as PNG bytes (for an atomic write), with its error-bar legend as the title; closes it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write(report: Report, out: Path) -> None:
    """report.md, report.png and results.json (every run's every value and provenance) into `out`, atomically."""
    out = Path(out)
    atomic_write_bytes(out / "report.md", markdown(report).encode())
    atomic_write_bytes(out / "report.png", figure(report))
    atomic_write_json(
        out / "results.json",
        {
            "root": str(report.root),
            "grouped_by": report.by,
            "replicate": REPLICATE,
            "baseline": group_label(report.baseline, report.by),
            "cells": "mean ± sample std over the group's runs",
            "test": "two-sided paired t over seeds both groups have, else Welch's t; 95% t interval",
            "runs": [
                {
                    "path": str(r.path.relative_to(report.root)),
                    "group": group_label(tuple(r.value(k) for k in report.by), report.by),
                    REPLICATE: r.value(REPLICATE),
                    "overrides": r.overrides,
                    "provenance": r.provenance,
                    "values": r.metrics,
                }
                for r in report.runs
            ],
            "groups": report.summaries(),
            "comparisons": report.comparisons(),
            "no_metrics": report.empty,
        },
    )


def pairs(text: str | None, flag: str) -> dict[str, str]:
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"{flag} {text}: expected KEY=VALUE[,KEY=VALUE]")
        out[key.strip()] = value.strip()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minimath.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a multirun directory (or any directory of runs)")
    parser.add_argument("--where", help="only runs with these values, e.g. stage=4,precision=32-true")
    parser.add_argument("--by", nargs="*", help="group by these keys (default: the keys the runs differ in)")
    parser.add_argument("--metric", nargs="+", help=f"metric name patterns (default: {' '.join(DEFAULT_METRICS)})")
    parser.add_argument("--baseline", help="the group the others are compared with, e.g. scheduler=cosine")
    parser.add_argument(
        "--compare", nargs="*", help="compare only these metrics (patterns; default: every metric; none given: none)"
    )
    parser.add_argument("--tail", type=int, default=20, help="window of the @tail means of training scalars")
    parser.add_argument(
        "--window", type=int, help="also the @window<T> means of training scalars over their last T tokens"
    )
    parser.add_argument("--out", type=Path, help="where the report goes (default: DIR/report)")
    args = parser.parse_args(argv)
    try:
        report = build(
            args.dir,
            pairs(args.where, "--where"),
            args.by,
            args.metric,
            pairs(args.baseline, "--baseline"),
            args.tail,
            args.compare,
            args.window,
        )
        out = args.out or args.dir / "report"
        write(report, out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(markdown(report))
    print(f"written to {out}/ (report.md, report.png, results.json)")


if __name__ == "__main__":
    main()
