#!/usr/bin/env python3
"""Draws ns/request per configuration from the last `cargo bench --bench overhead` run.

Reads the interleaved medians the bench saves in target/keygate-overhead.json (or, when
absent, criterion's means under target/criterion/overhead) and writes an SVG bar chart with
no dependencies beyond Python 3. Usage: python3 benches/plot.py [output.svg]
"""
import html
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CONFIGS = [
    ("1_bare", "bare router"),
    ("2_tower_http_bearer", "tower-http bearer"),
    ("3_floor", "hand-written floor"),
    ("4_keygate_memory", "keygate, MemoryStore"),
    ("5_keygate_cached_sqlite", "keygate, cached SQLite"),
    ("6_keygate_memory_limited", "keygate, MemoryStore, rate limit"),
]
# (size, mode, label, colour): one bar each per configuration.
SERIES = [
    (1000, "rotating", "1,000 keys, rotating", "#4C78A8"),
    (1000, "fixed", "1,000 keys, one key", "#9ECAE9"),
    (1000000, "rotating", "1,000,000 keys, rotating", "#F58518"),
    (1000000, "fixed", "1,000,000 keys, one key", "#FFBF79"),
]


def interleaved():
    try:
        with open(os.path.join(TARGET, "keygate-overhead.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


INTERLEAVED = interleaved()


def estimate(config, size, mode):
    if INTERLEAVED is not None:
        return INTERLEAVED.get(str(size), {}).get(mode, {}).get(config)
    path = os.path.join(
        TARGET, "criterion", "overhead", config, f"{size}_{mode}", "new", "estimates.json"
    )
    try:
        with open(path) as f:
            return json.load(f)["mean"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "benches", "overhead.svg")
    values = {(c, s, m): estimate(c, s, m) for c, _ in CONFIGS for s, m, _, _ in SERIES}
    found = [v for v in values.values() if v]
    if not found:
        sys.exit("no figures: run `cargo bench --bench overhead --features cache,sqlite` first")
    top = max(found) * 1.15
    width, row, left, bar = 760, 96, 250, 20
    height = 60 + row * len(CONFIGS) + 40
    scale = (width - left - 80) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="20" y="28" font-size="16" font-weight="bold">'
        "Per-request cost, in-process axum Router (ns/request, lower is better)</text>",
        f'<text x="20" y="46" font-size="11" fill="#555">'
        f'{"medians of interleaved rounds" if INTERLEAVED else "criterion means"}, one run</text>',
    ]
    for i, (config, label) in enumerate(CONFIGS):
        y = 60 + i * row
        parts.append(f'<text x="20" y="{y + 24}">{html.escape(label)}</text>')
        for j, (size, mode, _, color) in enumerate(SERIES):
            value = values[(config, size, mode)]
            if value is None:
                continue
            yy = y + j * (bar + 2)
            w = value * scale
            parts.append(f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar}" fill="{color}"/>')
            parts.append(f'<text x="{left + w + 6:.1f}" y="{yy + 15}">{value:.0f}</text>')
    y = height - 24
    for j, (_, _, label, color) in enumerate(SERIES):
        x = 20 + j * 185
        parts.append(f'<rect x="{x}" y="{y - 11}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{x + 18}" y="{y}">{label}</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
