#!/usr/bin/env python3
"""The summary of a soak's samples file (tests/soak.rs), also of a run cut
short before it wrote its own: least-squares slopes per hour of the
gateway's RSS and open fds after the warm-up, their min/max, requests and
unexpected answers, in-flight max.

Samples over a pause (`"paused": true`, or `in_flight` -1: the admin
listener did not answer, the gateway was stopped) are left out of the
slopes, as tests/soak.rs does.

    python3 tests/support/soak_summary.py SAMPLES.jsonl [--warmup SECS]
"""

import argparse
import json


def slope(points):
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx if sxx else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("--warmup", type=float, default=120.0)
    a = ap.parse_args()
    samples = []
    with open(a.samples) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if "t_s" in d:
                samples.append(d)
    if not samples:
        raise SystemExit("no samples")

    def paused(s):
        return s.get("paused", False) or s["in_flight"] < 0

    steady = [s for s in samples if s["t_s"] >= a.warmup and not paused(s)]
    if not steady:
        raise SystemExit("no sample after the warm-up outside pauses")
    mib = [s["rss_kib"] / 1024 for s in steady]
    anon = [s.get("rss_anon_kib", 0) / 1024 for s in steady]
    fds = [s["fds"] for s in steady]
    hours = [s["t_s"] / 3600 for s in steady]
    last = samples[-1]
    out = {
        "secs": round(last["t_s"]),
        "samples": len(samples),
        "steady_samples": len(steady),
        "paused_samples": sum(1 for s in samples if paused(s)),
        "requests": last["requests"],
        "unexpected": last["unexpected"],
        "rss_mib_start": round(mib[0], 1),
        "rss_mib_end": round(mib[-1], 1),
        "rss_mib_min": round(min(mib), 1),
        "rss_mib_max": round(max(mib), 1),
        "rss_mib_per_h": round(slope(list(zip(hours, mib))), 2),
        "rss_anon_mib_start": round(anon[0], 1),
        "rss_anon_mib_end": round(anon[-1], 1),
        "rss_anon_mib_per_h": round(slope(list(zip(hours, anon))), 2),
        "fds_start": fds[0],
        "fds_end": fds[-1],
        "fds_min": min(fds),
        "fds_max": max(fds),
        "fds_per_h": round(slope(list(zip(hours, fds))), 2),
        "in_flight_max": max(s["in_flight"] for s in samples),
    }
    if not all("rss_anon_kib" in s for s in steady):
        # Sampled by an older tests/soak.rs.
        for k in ("rss_anon_mib_start", "rss_anon_mib_end", "rss_anon_mib_per_h"):
            del out[k]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
