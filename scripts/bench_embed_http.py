"""A bounded load client for `POST /embed` of a running `convrec serve` on this machine:
N concurrent clients, each sending a fixed number of requests one after another, every
request a different text (so the Redis cache `embed:{hash}` is not what is measured).
Prints latency percentiles and throughput, and writes them as JSON. Standard library only.

    python3 bench_embed_http.py --url http://127.0.0.1:18080 --texts texts.json \
        [--clients 20] [--requests 20] [--kind short] [--json out.json]
"""

import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--texts", required=True)
    parser.add_argument("--kind", default="short")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=20, help="per client")
    parser.add_argument("--warmup", type=int, default=10, help="requests before timing")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--json")
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("this load client only targets this machine (127.0.0.1)")
    with open(args.texts, encoding="utf-8") as f:
        pool = json.load(f)[args.kind]
    run_id = int(time.time())

    def text(i):
        # A suffix keeps each text unique across requests and runs: no cache hits.
        return f"{pool[i % len(pool)]} ({run_id}-{i})"

    def post(conn, body):
        started = time.perf_counter()
        conn.request("POST", "/embed", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def connect():
        return http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)

    warm = connect()
    for i in range(args.warmup):
        post(warm, json.dumps({"text": text(-1 - i)}))
    warm.close()

    latencies, statuses, lock = [], {}, threading.Lock()

    def client(index):
        conn = connect()
        for n in range(args.requests):
            body = json.dumps({"text": text(index * args.requests + n)})
            try:
                status, seconds = post(conn, body)
            except OSError as error:
                status, seconds = type(error).__name__, None
                conn.close()
                conn = connect()
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(seconds)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started

    latencies.sort()
    result = {
        "clients": args.clients,
        "requests": args.clients * args.requests,
        "kind": args.kind,
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": wall,
        "ok_per_second": len(latencies) / wall,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p95_ms": percentile(latencies, 95) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "mean_ms": statistics.mean(latencies) * 1e3 if latencies else float("nan"),
    }
    print(
        f"POST /embed, {args.clients} clients x {args.requests} requests ({args.kind} texts): "
        f"{result['ok_per_second']:.1f} ok/s, p50 {result['p50_ms']:.0f} ms, "
        f"p95 {result['p95_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, statuses {result['statuses']}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
