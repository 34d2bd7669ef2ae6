#!/usr/bin/env python3
"""Deletes the search server's indices and index templates that earlier test runs left behind
(every test creates its own under a `test-` prefix). Thousands of them slow the local server
down until requests fail; scripts/test.sh runs this before the suite, like it drops the test
databases."""
import json
import os
import sys
import urllib.request

BASE = os.environ.get("CONVREC__ELASTICSEARCH__URL", "http://127.0.0.1:9200").rstrip("/")


def call(method, path):
    request = urllib.request.Request(BASE + path, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def main():
    try:
        indices = [i["index"] for i in call("GET", "/_cat/indices?format=json")]
        templates = [t["name"] for t in call("GET", "/_index_template").get("index_templates", [])]
    except Exception as error:  # the server is away: nothing to clean, the tests will say so
        print(f"search server not cleaned: {error}", file=sys.stderr)
        return
    stale = [i for i in indices if i.startswith("test-")]
    for start in range(0, len(stale), 100):
        call("DELETE", "/" + ",".join(stale[start:start + 100]))
    stale_templates = [t for t in templates if t.startswith("test-")]
    for name in stale_templates:
        call("DELETE", f"/_index_template/{name}")
    if stale or stale_templates:
        print(f"search server: deleted {len(stale)} test indices, {len(stale_templates)} templates")


main()
