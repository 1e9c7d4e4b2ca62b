"""bench.png: the chart of the results (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_lib.common import VARIANTS


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(VARIANTS)
    summary = results["summary"]
    med = [summary[k]["wall_ms"]["median"] for k in keys]
    lo = [summary[k]["wall_ms"]["median"] - summary[k]["wall_ms"]["min"] for k in keys]
    hi = [summary[k]["wall_ms"]["max"] - summary[k]["wall_ms"]["median"] for k in keys]
    labels = [f"{k}  {VARIANTS[k]}" for k in keys]
    colors = ["#2b6cb0", "#a0aec0", "#a0aec0"]
    scale = results.get("scale") or []

    if scale:
        fig, (ax, ax2) = plt.subplots(
            2, 1, figsize=(7, 6), dpi=100, gridspec_kw={"height_ratios": [1, 1.5]}
        )
    else:
        fig, ax = plt.subplots(figsize=(7, 2.5), dpi=100)
    y = list(range(len(keys)))
    ax.barh(
        y,
        med,
        xerr=[lo, hi],
        color=colors,
        height=0.6,
        error_kw={"ecolor": "#333333", "capsize": 4, "elinewidth": 1},
    )
    ax.set_yticks(y, labels, fontsize=10)
    ax.invert_yaxis()
    right = max(m + h for m, h in zip(med, hi, strict=True))
    for yi, m, h in zip(y, med, hi, strict=True):
        ax.text(m + h + right * 0.02, yi, f"{m:.0f} ms", va="center", fontsize=10)
    ax.set_xlim(0, right * 1.18)
    n = results["config"]["n"]
    ax.set_title("Time to a working token", fontsize=11, loc="left")
    ax.set_xlabel(f"ms, median of {n} rounds (whiskers: min to max)", fontsize=9)
    ax.tick_params(axis="x", labelsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    if scale:
        single = summary["A"]["wall_ms"]["median"] / 1000
        ks = [r["k"] for r in scale]
        one = [r["one_s"] for r in scale]
        seq = [r["sequential_s"] for r in scale]
        p = results["config"]["parallel"]
        ax2.plot(ks, [k * single for k in ks], "--", color="#718096", label="K x single token (A)")
        ax2.plot(ks, seq, "o-", color="#a0aec0", label="K one-token processes, in sequence")
        ax2.plot(
            ks, one, "o-", color="#2b6cb0", label=f"one process, K x --service-account (P={p})"
        )
        for k, v in zip(ks, one, strict=True):
            ax2.annotate(f"{v:.2f} s", (k, v), textcoords="offset points", xytext=(0, 7),
                         ha="center", fontsize=9, color="#2b6cb0")  # fmt: skip
        ax2.annotate(f"{seq[-1]:.1f} s", (ks[-1], seq[-1]), textcoords="offset points",
                     xytext=(-4, 6), ha="right", fontsize=9, color="#4a5568")  # fmt: skip
        ax2.set_title("K tokens: total time", fontsize=11, loc="left")
        ax2.set_xlabel("K (tokens, fresh ServiceAccounts)", fontsize=9)
        ax2.set_ylabel("seconds", fontsize=9)
        ax2.set_xticks(ks)
        ax2.set_xlim(0, max(ks) * 1.05)
        ax2.set_ylim(0, max(max(seq), max(ks) * single) * 1.1)
        ax2.tick_params(labelsize=9)
        ax2.legend(fontsize=8, frameon=False, loc="upper left")
        for side in ("top", "right"):
            ax2.spines[side].set_visible(False)
    fig.tight_layout()
    if scale:
        # The bar chart's long labels set a wide left margin; the line chart needs less.
        box = ax2.get_position()
        left = 0.1
        ax2.set_position((left, box.y0, box.x1 - left, box.height))
    fig.savefig(path)
    plt.close(fig)
