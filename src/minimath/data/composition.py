"""Per-stage composition report: a markdown table and a chart per stage, like the report's stage-N-data figures."""

from __future__ import annotations

import io
from pathlib import Path

from omegaconf import DictConfig

from minimath.io import atomic_write_bytes


def entry_label(entry: DictConfig) -> str:
    return f"stage_{entry.stage}" if "stage" in entry else str(entry.source)


def stage_rows(data_cfg: DictConfig, manifest: dict, stage: str) -> list[dict]:
    """One row per mixture entry: planned tokens per epoch, prepared tokens, and passes over them."""
    spec = data_cfg.stages[stage]
    rows = []
    for entry in spec.mix:
        planned = float(entry.share) * float(spec.tokens)
        if "stage" in entry:
            available = float(data_cfg.stages[str(entry.stage)].tokens)
        else:
            available = float(manifest["sources"][str(entry.source)]["tokens"])
        rows.append(
            {
                "label": entry_label(entry),
                "share": float(entry.share),
                "planned": planned,
                "available": available,
                "passes": planned * int(spec.epochs) / max(available, 1.0),
            }
        )
    return rows


def provenance_lines(manifest: dict, spec: DictConfig) -> list[str]:
    """Under a stage's table: where each synthesized source of the stage came from (its synthesis manifest)."""
    lines = []
    for entry in spec.mix:
        for p in manifest["sources"].get(str(entry.get("source")), {}).get("provenance", []):
            stand_in = " [stand-in teacher]" if p["stand_in"] else ""
            lines.append(
                f"- `{entry.source}`: synthesized by {p['teacher']}{stand_in}, prompts `{p['prompts']}`, "
                f"{p['examples']:,} verified examples of {p['requests']:,} requests ({p['manifest']})"
            )
    return [""] + lines if lines else []


def _human(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def write_composition_report(data_cfg: DictConfig, manifest: dict, directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"# Composition of `{data_cfg.name}`", ""]
    for stage in data_cfg.stages:
        spec = data_cfg.stages[stage]
        rows = stage_rows(data_cfg, manifest, str(stage))
        lines += [
            f"## Stage {stage}: {_human(float(spec.tokens))} tokens per epoch × {spec.epochs} epoch(s)",
            "",
            "| source | share | tokens per epoch | prepared tokens | passes over the data |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['label']} | {r['share']:.1%} | {_human(r['planned'])} | {_human(r['available'])} | "
            f"{r['passes']:.2f} |"
            for r in rows
        ]
        lines += provenance_lines(manifest, spec)
        lines += ["", f"![stage {stage}](stage-{stage}-data.png)", ""]
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        wedges, _ = ax.pie([r["share"] for r in rows], startangle=90, counterclock=False, wedgeprops={"width": 0.45})
        ax.legend(
            wedges,
            [f"{r['label']}: {_human(r['planned'])} ({r['share']:.1%})" for r in rows],
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
        )
        ax.set_title(f"{data_cfg.name}: stage {stage} data ({_human(float(spec.tokens))} tokens/epoch)")
        png = io.BytesIO()  # in memory, then one atomic write: runs preparing side by side share the directory
        fig.savefig(png, dpi=100, bbox_inches="tight", format="png")
        plt.close(fig)
        atomic_write_bytes(directory / f"stage-{stage}-data.png", png.getvalue())
    atomic_write_bytes(directory / "composition.md", "\n".join(lines).encode("utf-8"))
