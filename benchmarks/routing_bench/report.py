"""The benchmark's outputs: a markdown table per workload, the goals check, and a PNG chart."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routing_bench.pngchart import bar_chart_png

Row = dict[str, Any]


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def _s(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds:.2f}"


def table(rows: Sequence[Row], titles: dict[str, str]) -> str:
    """One markdown table with a block per workload."""
    out = [
        "| workload | router:policy | req/s | out tok/s | TTFT p50 ms | TTFT p99 ms | e2e p50 s | e2e p99 s "
        "| prefix-cache hit % | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "skipped" in row:
            out.append(f"| {row['workload']} | {row['target']} | skipped: {row['skipped']} | | | | | | | |")
            continue
        out.append(
            f"| {row['workload']} {titles.get(row['workload'], '')} | {row['target']} | {row['req_s']:.1f} "
            f"| {row['out_tok_s']:.0f} | {_ms(row['ttft_p50'])} | {_ms(row['ttft_p99'])} | {_s(row['e2e_p50'])} "
            f"| {_s(row['e2e_p99'])} | {row['hit_rate'] * 100:.1f} | {row['errors']}"
            + (f" (capped at {row['ok'] + row['errors']} requests)" if row.get("capped") else "")
            + " |"
        )
    return "\n".join(out) + "\n"


def goals(rows: Sequence[Row], noise: float = 0.05) -> list[str]:
    """The issue's goals, checked against these rows (`noise`: relative margin counted as on par)."""
    done = [r for r in rows if "skipped" not in r]
    lines: list[str] = []
    for wl in sorted({r["workload"] for r in done}):
        ours = [r for r in done if r["workload"] == wl and r["target"].startswith("gllm:")]
        peers = [r for r in done if r["workload"] == wl and not r["target"].startswith("gllm:")]
        if not ours:
            continue
        best_tput = max(ours, key=lambda r: r["req_s"])
        best_ttft = min(ours, key=lambda r: r["ttft_p50"])
        if peers:
            peer_tput = max(peers, key=lambda r: r["req_s"])
            peer_ttft = min(peers, key=lambda r: r["ttft_p50"])
            strict = wl in ("w2", "w3")
            tput_ok = (
                best_tput["req_s"] > peer_tput["req_s"]
                if strict
                else best_tput["req_s"] >= peer_tput["req_s"] * (1 - noise)
            )
            ttft_ok = (
                best_ttft["ttft_p50"] < peer_ttft["ttft_p50"]
                if strict
                else best_ttft["ttft_p50"] <= peer_ttft["ttft_p50"] * (1 + noise)
            )
            verb = "beats" if strict else "on par with"
            lines.append(
                f"- {wl}: throughput {'MET' if tput_ok else 'MISSED'} ({best_tput['target']} {best_tput['req_s']:.1f} req/s "
                f"vs best peer {peer_tput['target']} {peer_tput['req_s']:.1f}, {_delta(best_tput['req_s'], peer_tput['req_s'])}; goal: {verb}); "
                f"TTFT p50 {'MET' if ttft_ok else 'MISSED'} ({best_ttft['target']} {_ms(best_ttft['ttft_p50'])} ms vs "
                f"{peer_ttft['target']} {_ms(peer_ttft['ttft_p50'])} ms, {_delta(best_ttft['ttft_p50'], peer_ttft['ttft_p50'])})"
            )
        lb = next((r for r in ours if r["target"] == "gllm:least_busy"), None)
        rr = next((r for r in ours if r["target"] == "gllm:round_robin"), None)
        if lb and rr:
            ok = lb["req_s"] >= rr["req_s"] * (1 - noise) and lb["ttft_p50"] <= rr["ttft_p50"] * (1 + noise)
            lines.append(
                f"- {wl}: least_busy vs round_robin {'MET' if ok else 'MISSED'} ({lb['req_s']:.1f} vs {rr['req_s']:.1f} req/s, "
                f"TTFT p50 {_ms(lb['ttft_p50'])} vs {_ms(rr['ttft_p50'])} ms)"
            )
    return lines


def _delta(ours: float, theirs: float) -> str:
    if not theirs or math.isnan(ours) or math.isnan(theirs):
        return "n/a"
    return f"{(ours / theirs - 1) * 100:+.1f}%"


def chart(rows: Sequence[Row], path: Path) -> str:
    """Throughput and TTFT p50 per workload and target as a PNG; returns how it was drawn."""
    done = [r for r in rows if "skipped" not in r]
    workloads = sorted({r["workload"] for r in done})
    targets = list(dict.fromkeys(r["target"] for r in done))
    value = {(r["workload"], r["target"]): r for r in done}
    tput = [[value[(w, t)]["req_s"] if (w, t) in value else 0.0 for t in targets] for w in workloads]
    ttft = [
        [value[(w, t)]["ttft_p50"] * 1000 if (w, t) in value else 0.0 for t in targets] for w in workloads
    ]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path.write_bytes(bar_chart_png([tput, ttft], len(targets)))
        return "pure-Python PNG (no matplotlib): bars in the table's target order, top throughput, bottom TTFT p50"
    fig, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    width = 0.8 / max(1, len(targets))
    for panel, (ax, data, label) in enumerate(
        zip(
            axes,
            (tput, ttft),
            ("requests/s (higher is better)", "TTFT p50 ms, log scale (lower is better)"),
            strict=True,
        )
    ):
        for j, target in enumerate(targets):
            xs = [i + j * width for i in range(len(workloads))]
            ax.bar(
                xs,
                [data[i][j] for i in range(len(workloads))],
                width,
                label=target if panel == 0 else None,
                hatch="" if target.startswith("gllm") else "//",
            )
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_yscale("log")  # a stuck router's seconds would flatten everyone else's milliseconds
    axes[1].set_xticks([i + 0.4 - width / 2 for i in range(len(workloads))], workloads)
    axes[0].legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.25))
    fig.suptitle("Routing on 8 simulated engines (hatched: peers)", y=0.99)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return "matplotlib"
