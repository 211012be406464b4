#!/usr/bin/env python3
"""Series-level WADO-RS metadata, cold (first request after the series arrived) and warm (median of repeats),
for Orthanc's DICOMweb plugin and the platform, in one run.

  bench_metadata.py --orthanc http://127.0.0.1:8042/dicom-web --platform http://127.0.0.1:8000/dicomweb \
      --token KEY --study UID --series UID [--runs 20]
"""
import argparse
import json
import statistics
import time

import requests

ACCEPT = {"Accept": "application/dicom+json"}


def timed_get(session, url, headers):
    started = time.perf_counter()
    response = session.get(url, headers=headers, timeout=120)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed * 1000, len(response.json())


def measure(name, base, headers, study, series, runs):
    session = requests.Session()
    url = f"{base}/studies/{study}/series/{series}/metadata"
    cold_ms, instances = timed_get(session, url, headers)
    warm = [timed_get(session, url, headers)[0] for _ in range(runs)]
    record = {"bench": "metadata", "target": name, "instances": instances, "cold_ms": round(cold_ms, 1),
              "warm_p50_ms": round(statistics.median(warm), 1),
              "warm_p95_ms": round(sorted(warm)[max(0, int(0.95 * len(warm)) - 1)], 1)}
    print(json.dumps(record))
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orthanc", required=True)
    parser.add_argument("--platform", required=True)
    parser.add_argument("--token", required=True, help="the platform's API token")
    parser.add_argument("--study", required=True)
    parser.add_argument("--series", required=True)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    orthanc = measure("orthanc", args.orthanc, ACCEPT, args.study, args.series, args.runs)
    platform = measure("platform", args.platform, {**ACCEPT, "Authorization": f"Token {args.token}"},
                       args.study, args.series, args.runs)
    print(f"\n| series metadata ({platform['instances']} instances) | Orthanc | platform | platform ÷ Orthanc |")
    print("|---|---:|---:|---:|")
    for key, label in (("cold_ms", "cold"), ("warm_p50_ms", "warm p50")):
        print(f"| {label} | {orthanc[key]} ms | **{platform[key]} ms** | **{platform[key] / orthanc[key]:.2f}** |")


if __name__ == "__main__":
    main()
