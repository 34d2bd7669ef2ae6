#!/usr/bin/env python3
"""Writes the ESCI judgments with queries in Korean, for
`convrec eval esci --judgments FILE`.

    python3 scripts/esci-korean-judgments.py [--half dev|test|all] [OUT]

Reads our own translations, typed as a Korean shopper would:
data/eval/esci_dev_queries_ko.tsv (the 77 dev-half queries: tune on these) and
data/eval/esci_test_queries_ko.tsv (the 73 test-half queries, written before any
Korean tuning and never tuned on: report these), and $CONVREC_SHARED_DATA (default
../shared/data)/esci/esci_us_judgments_flat.tsv; keeps only the translated queries,
with the same products and ratings. The output is derived from the shared data set,
so it goes to /tmp by default and is never committed.

The eval assigns halves by hashing the query text, so a Korean query lands in either
half: read the "all" column of a run on this file, which is exactly the English half
(or all 150 queries with --half all).
"""
import csv
import os
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
shared = Path(os.environ.get("CONVREC_SHARED_DATA", root.parent / "shared" / "data"))
args = sys.argv[1:]
half = "dev"
if args[:1] == ["--half"] and len(args) > 1:
    half, args = args[1], args[2:]
if half not in ("dev", "test", "all"):
    sys.exit("--half must be dev, test or all")
out = Path(args[0]) if args else Path(f"/tmp/esci_judgments_ko_{half}.tsv")

korean = {}
for part in ("dev", "test") if half == "all" else (half,):
    with open(root / f"data/eval/esci_{part}_queries_ko.tsv", encoding="utf-8") as f:
        korean.update(
            {row["english"]: row["korean"] for row in csv.DictReader(f, delimiter="\t")}
        )
if len(set(korean.values())) != len(korean):
    sys.exit("two English queries share one Korean translation")

seen = set()
with open(shared / "esci/esci_us_judgments_flat.tsv", encoding="utf-8") as src, open(
    out, "w", encoding="utf-8"
) as dst:
    dst.write(src.readline())
    for line in src:
        query, rest = line.split("\t", 1)
        if query in korean:
            seen.add(query)
            dst.write(f"{korean[query]}\t{rest}")
missing = set(korean) - seen
if missing:
    sys.exit(f"translated queries not in the judgments: {sorted(missing)}")
print(f"{out}: {len(seen)} Korean queries", file=sys.stderr)
