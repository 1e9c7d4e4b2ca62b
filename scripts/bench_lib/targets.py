"""The targets of the issue, each with what was measured and whether it is met."""

from __future__ import annotations

from typing import Any

from bench_lib.tables import MB_PER_MIB, mib_mb, table


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: what was measured and whether it is met (None: not measured)."""
    s = results["summary"]
    a, b, c = (s[k]["wall_ms"]["median"] for k in "ABC")
    out: list[dict[str, Any]] = [
        {
            "target": "median A <= 0.5 x median B (the docs' recipe)",
            "measured": f"A {a:.0f} ms, B {b:.0f} ms: A/B = {a / b:.2f}",
            "met": a <= 0.5 * b,
        },
        {
            "target": "median A <= 0.9 x median C (kubectl create token + curl)",
            "measured": f"A {a:.0f} ms, C {c:.0f} ms: A/C = {a / c:.2f}",
            "met": a <= 0.9 * c,
        },
    ]
    imports = results.get("imports")
    if imports:
        med = imports["ms"]["median"]
        floor = imports.get("floor_ms", {}).get("median")
        beside = (
            f" (the floor, `{imports['floor']}` alone: {floor:.1f} ms)" if floor is not None else ""
        )
        out.append(
            {
                "target": "imports of a plain issue run <= 40 ms (median, -X importtime)",
                "measured": f"{med:.1f} ms{beside}",
                "met": med <= 40,
            }
        )
    helpm = results["startup"]["--help"]["median"]
    out.append(
        {
            "target": "`--help` median < 150 ms",
            "measured": f"{helpm:.0f} ms (median of {results['config']['startup_runs']})",
            "met": helpm < 150,
        }
    )
    pick = results.get("pickup")
    if pick:
        lat = pick["latency_ms"]
        via = (
            "tool's `token picked up at` - watch event"
            if pick["source"] == "tool"
            else "arrival of the tool's `filled` log line - watch event "
            "(the tool printed no `token picked up at` line)"
        )
        out.append(
            {
                "target": "token picked up <= 50 ms after the controller writes it "
                "(median and p90)",
                "measured": f"median {lat['median']:.1f} ms, p90 {lat['p90']:.1f} ms, max "
                f"{lat['max']:.1f} ms over {pick['n']} tokens ({via})",
                "met": lat["median"] <= 50 and lat["p90"] <= 50,
            }
        )
    else:
        out.append({"target": "token pick-up <= 50 ms", "measured": "not measured", "met": None})
    rss_a = s["A"]["maxrss_mib"]["max"]
    rss_parts = [f"A (1 token): max {mib_mb(rss_a)}"]
    rss_all = [rss_a]
    scale = results.get("scale") or []
    if scale:
        big = max(scale, key=lambda r: r["k"])
        rss_parts.append(f"one process, K={big['k']}: {mib_mb(big['one_maxrss_mib'])}")
        rss_all += [r["one_maxrss_mib"] for r in scale]
    out.append(
        {
            "target": "peak RSS < 100 MB",
            "measured": "; ".join(rss_parts),
            "met": max(rss_all) * MB_PER_MIB < 100,
        }
    )
    if scale:
        big = max(scale, key=lambda r: r["k"])
        single = a
        ratio = 1000 * big["one_s"] / (big["k"] * single)
        out.append(
            {
                "target": f"K tokens grow far slower than K x single (K={big['k']}, one process; "
                "the issue gives no number for 'far')",
                "measured": f"{big['one_s']:.2f} s vs {big['k']} x {single:.0f} ms = "
                f"{big['k'] * single / 1000:.2f} s: ratio {ratio:.3f} ({1 / ratio:.1f}x less)",
                "met": None,
            }
        )
    failures = results.get("failures") or []
    tokens = sum(len(f["failed"]) for f in failures)
    out.append(
        {
            "target": "every issued token works (all runs)",
            "measured": "all did"
            if not tokens
            else f"{tokens} token(s) FAILED in {len(failures)} run(s); see Failures",
            "met": not tokens,
        }
    )
    return out


def render_targets(results: dict[str, Any]) -> str:
    mark = {True: "yes", False: "**NO**", None: "n/a"}
    return table(
        ["Target", "Measured", "Met"],
        [[t["target"], t["measured"], mark[t["met"]]] for t in results["targets"]],
        [False, False, False],
    )
