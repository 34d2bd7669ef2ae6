#!/usr/bin/env python3
"""Writes the ESCI judgments with the dev half's queries in Korean, for
`convrec eval esci --judgments FILE`.

    python3 scripts/esci-korean-judgments.py [OUT]

Reads data/eval/esci_dev_queries_ko.tsv (our own translations of the 77 dev-half
queries, typed as a Korean shopper would) and $CONVREC_SHARED_DATA (default
../shared/data)/esci/esci_us_judgments_flat.tsv; keeps only the translated queries,
with the same products and ratings. The output is derived from the shared data set,
so it goes to /tmp by default and is never committed.

The eval assigns halves by hashing the query text, so a Korean query lands in either
half: read the "all" column of a run on this file, which is exactly the English dev half.
"""
import csv
import os
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
shared = Path(os.environ.get("CONVREC_SHARED_DATA", root.parent / "shared" / "data"))
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/esci_judgments_ko_dev.tsv")

with open(root / "data/eval/esci_dev_queries_ko.tsv", encoding="utf-8") as f:
    korean = {row["english"]: row["korean"] for row in csv.DictReader(f, delimiter="\t")}
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
