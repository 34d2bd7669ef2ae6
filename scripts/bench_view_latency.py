#!/usr/bin/env python3
"""How soon a view posted to one instance changes the member's list on another.

    python3 scripts/bench_view_latency.py --post http://127.0.0.1:18081 \
        --read http://127.0.0.1:18082 --token "$ADMIN_TOKEN" --samples 100

For each sample a new member gets a list from the reading instance (so it is cached there),
then views that list's first product through the posting instance; from the 202 on, the reading
instance is asked every 10 ms until the viewed product is gone from the list (a viewed product
is history, never a suggestion). Prints p50/p95/max and how many never changed within
--timeout seconds (those count as the timeout in the percentiles). Standard library only.
"""
import argparse
import json
import statistics
import time
import urllib.request
import uuid


def call(method, url, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def first_ids(base, token, member):
    _, body = call("GET", f"{base}/api/recommendations/{member}?limit=10", token)
    return [item["id"] for item in body["items"]]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--post", required=True)
    parser.add_argument("--read", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    delays, never = [], 0
    for i in range(args.samples):
        member = f"viewlat-{run}-{i}"
        listed = first_ids(args.read, args.token, member)
        if not listed:
            raise SystemExit("empty list: is the catalog imported?")
        viewed = listed[0]
        status, _ = call("POST", f"{args.post}/api/events", args.token,
                         {"type": "view", "member_id": member, "product_id": viewed})
        assert status == 202, status
        posted = time.monotonic()
        while True:
            if viewed not in first_ids(args.read, args.token, member):
                delays.append(time.monotonic() - posted)
                break
            if time.monotonic() - posted > args.timeout:
                never += 1
                delays.append(args.timeout)
                break
            time.sleep(0.01)
    delays.sort()
    p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000
    print(f"samples {len(delays)}: p50 {p(0.5):.0f} ms, p95 {p(0.95):.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms, mean {statistics.mean(delays) * 1000:.0f} ms, "
          f"unchanged after {args.timeout:.0f} s: {never}")


if __name__ == "__main__":
    main()
