#!/usr/bin/env python3
"""Median ingest, C-FIND and DICOMweb figures per target from bench_archive.sh's JSON lines, with ratios to
Orthanc.

  summarize_archive.py results.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    records = [json.loads(line) for line in open(path) if line.strip()]
    ingest = defaultdict(list)
    for record in records:
        if record.get("bench") == "store" and "query-load" not in record["label"]:
            target, profile, _ = record["label"].split()
            ingest[(profile, record["parallel"], target)].append(record)
    if ingest:
        print("\n### C-STORE ingest (median of repetitions)\n")
        print("| corpus | assoc. | storescp inst/s | Orthanc inst/s | platform inst/s | platform MB/s "
              "| platform ÷ Orthanc | platform CPU ms/inst | all ok |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for profile, parallel in sorted({(p, n) for p, n, _ in ingest}):
            cell = {target: ingest.get((profile, parallel, target), []) for target in ("storescp", "orthanc", "platform")}
            rate = {t: statistics.median(r["instances_per_s"] for r in rs) if rs else float("nan")
                    for t, rs in cell.items()}
            mbs = statistics.median(r["MB_per_s"] for r in cell["platform"]) if cell["platform"] else float("nan")
            cpu = [r["server_cpu_ms_per_instance"] for r in cell["platform"] if "server_cpu_ms_per_instance" in r]
            ok = all(r["status"] == "ok" for rs in cell.values() for r in rs)
            print(f"| {profile} | {parallel} | {rate['storescp']:.0f} | {rate['orthanc']:.0f} | "
                  f"**{rate['platform']:.0f}** | {mbs:.1f} | **{rate['platform'] / rate['orthanc']:.2f}** | "
                  f"{statistics.median(cpu) if cpu else float('nan'):.2f} | {'yes' if ok else 'NO'} |")

    queries = defaultdict(dict)
    for record in records:
        if record.get("bench") == "query" and ("median_ms" in record or "MB_per_s_median" in record):
            queries[(record["test"], record["name"])][record["label"].split()[0]] = record
    if queries:
        print("\n### Query, retrieve and render (p50 latency, or MB/s for series retrieval)\n")
        print("| test | what | Orthanc | platform | platform p95 ms | platform ÷ Orthanc |")
        print("|---|---|---:|---:|---:|---:|")
        for (test, name), by_target in queries.items():
            orthanc, platform = by_target.get("orthanc", {}), by_target.get("platform", {})
            if "MB_per_s_median" in platform or "MB_per_s_median" in orthanc:
                o, p = orthanc.get("MB_per_s_median", float("nan")), platform.get("MB_per_s_median", float("nan"))
                print(f"| {test} | {name} | {o:.0f} MB/s | **{p:.0f} MB/s** | | **{p / o:.2f}** |")
            else:
                o, p = orthanc.get("median_ms", float("nan")), platform.get("median_ms", float("nan"))
                print(f"| {test} | {name} | {o:.1f} ms | **{p:.1f} ms** | {platform.get('p95_ms', float('nan')):.1f} "
                      f"| **{p / o:.2f}** |")


if __name__ == "__main__":
    main(sys.argv[1])
