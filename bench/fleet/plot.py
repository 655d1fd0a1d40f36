"""Draws bench/fleet/fleet.svg from a `fleet` JSON report: answers received
over time (cumulative count against ms since the publish, log scale), for
oc2mqtt's producer and otupy's, `to` all devices and broadcast, and prints
the figures as a Markdown table. Standard library only.

    python3 bench/fleet/plot.py REPORT.json bench/fleet/fleet.svg
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

W, H = 760, 430
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60


def series(r: dict[str, Any]) -> list[tuple[str, str, list[float], float]]:
    """(label, colour, arrival times in ms, when the call returned in ms)."""
    out = []
    for key, label, colour in (
        ("to", "oc2mqtt, to all", "#1f77b4"),
        ("broadcast", "oc2mqtt, broadcast + expect", "#2ca02c"),
    ):
        s = r[key]
        out.append((label, colour, sorted(s["arrivals_ms"]), s["returned_ms_p50"]))
    for key, label, colour in (
        ("otupy_to", "otupy 1.1.46, to all", "#d62728"),
        ("otupy_broadcast", "otupy 1.1.46, broadcast", "#ff7f0e"),
    ):
        if key in r:
            sends = sorted(r[key]["sends"], key=lambda s: s["returned_ms"])
            s = sends[len(sends) // 2]
            out.append((label, colour, sorted(s["arrivals_ms"]), s["returned_ms"]))
    return out


def svg(r: dict[str, Any]) -> str:
    n = r["devices"]
    lines = series(r)
    xmax = max(max(ret, a[-1] if a else 0) for _, _, a, ret in lines) * 1.3
    xmin = 1.0
    lx0, lx1 = math.log10(xmin), math.log10(xmax)

    def x(ms: float) -> float:
        return LEFT + (math.log10(max(ms, xmin)) - lx0) / (lx1 - lx0) * (W - LEFT - RIGHT)

    def y(count: float) -> float:
        # Headroom above n for the legend.
        return H - BOTTOM - count / (n * 1.3) * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">'
        f"A deny to {n} devices: answers received over time (the median send of each kind)</text>",
    ]
    # Grid and axes.
    decade = 10 ** math.floor(lx0)
    while decade <= xmax:
        if decade >= xmin:
            label = f"{decade:g} ms" if decade < 1000 else f"{decade / 1000:g} s"
            out.append(f'<line x1="{x(decade):.1f}" y1="{TOP}" x2="{x(decade):.1f}" y2="{H - BOTTOM}" stroke="#ddd"/>')
            out.append(f'<text x="{x(decade):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{label}</text>')
        decade *= 10
    for frac in (0, 0.25, 0.5, 0.75, 1):
        yy = y(frac * n)
        out.append(f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{W - RIGHT}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{int(frac * n)}</text>')
    out.append(
        f'<text x="{W / 2}" y="{H - 18}" text-anchor="middle">time since the publish (log scale); '
        "dashed: when the producer's call returned</text>"
    )
    out.append(
        f'<text x="16" y="{H / 2}" text-anchor="middle" transform="rotate(-90 16 {H / 2})">answers received</text>'
    )
    # Cumulative steps, and the return of the call.
    for _label, colour, arrivals, returned in lines:
        pts = [(x(xmin), y(0))]
        for k, t in enumerate(arrivals, 1):
            pts.append((x(t), pts[-1][1]))
            pts.append((x(t), y(k)))
        pts.append((x(returned), pts[-1][1]))
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.append(
            f'<line x1="{x(returned):.1f}" y1="{TOP}" x2="{x(returned):.1f}" y2="{H - BOTTOM}" '
            f'stroke="{colour}" stroke-dasharray="4 3"/>'
        )
    # The legend, top left (no answer arrives in the first few ms).
    lx, ly0 = LEFT + 12, TOP + 6
    out.append(
        f'<rect x="{lx - 6}" y="{ly0 - 8}" width="400" height="{16 * len(lines) + 8}" fill="white" stroke="#bbb"/>'
    )
    for i, (label, colour, arrivals, returned) in enumerate(lines):
        ly = ly0 + 8 + i * 16
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 20}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(
            f'<text x="{lx + 26}" y="{ly}">{label}: {len(arrivals)} answers, returned after {returned:,.0f} ms</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def table(r: dict[str, Any]) -> str:
    n = r["devices"]
    rows = [
        "| producer, send | sends | publish → last answer p50 / p99 | call returned p50 | answers lost "
        "| answered twice | broker CPU per send | client CPU per send |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (("to", f"oc2mqtt, `to` {n} ids"), ("broadcast", f"oc2mqtt, broadcast, `expect` {n}")):
        s = r[key]
        rows.append(
            f"| {label} | {s['sends']} | {s['last_answer_ms_p50']:.1f} / {s['last_answer_ms_p99']:.1f} ms "
            f"| {s['returned_ms_p50']:.1f} ms | {s['answers_lost']} | {s['answers_twice']} "
            f"| {s['broker_cpu_ms_per_send']:.0f} ms | {s['client_cpu_ms_per_send']:.0f} ms |"
        )
    for key, label in (("otupy_to", f"otupy 1.1.46, `to` {n} ids"), ("otupy_broadcast", "otupy 1.1.46, broadcast")):
        if key not in r:
            continue
        sends = r[key]["sends"]
        last = sorted(max(s["arrivals_ms"], default=math.nan) for s in sends)
        ret = sorted(s["returned_ms"] for s in sends)
        lost = sum(n - s["distinct_devices"] for s in sends)
        twice = sum(s["responses"] - s["distinct_devices"] for s in sends)
        rows.append(
            f"| {label} | {len(sends)} | {last[len(last) // 2]:.1f} / {last[-1]:.1f} ms (max) "
            f"| {ret[len(ret) // 2]:,.0f} ms | {lost} | {twice} | {r[key]['broker_cpu_ms_per_send']:.0f} ms | |"
        )
    e = r["executions"]
    rows.append("")
    rows.append(
        f"oc2mqtt's {e['commands']} commands: {e['device_never_ran']} devices never ran one, "
        f"{e['device_ran_twice']} ran one twice. {n} consumers connected in {r['connect_s']:.1f} s; "
        f"the process's RSS {r['rss_mib_before_fleet']:.0f} MiB before them, "
        f"{r['rss_mib_with_fleet']:.0f} MiB with them, {r['rss_mib_end']:.0f} MiB at the end "
        f"(peak {r['hwm_mib']:.0f} MiB); {r['open_fds']} open file descriptors."
    )
    return "\n".join(rows)


def main() -> None:
    report, target = sys.argv[1], sys.argv[2]
    with open(report) as f:
        r = json.load(f)
    with open(target, "w") as f:
        f.write(svg(r))
    print(table(r))


if __name__ == "__main__":
    main()
