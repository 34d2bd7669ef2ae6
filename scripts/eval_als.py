#!/usr/bin/env python3
"""Implicit ALS (the `implicit` package) on the Online Retail split that
`convrec eval online-retail --export-split DIR` writes, as the outside baseline.

It only ranks: it writes `member<TAB>sku` lines (top N per test customer, best first) that
`convrec eval online-retail --ranked als=FILE` scores with the same metric code as every
other method. Run it from a venv outside the repository (docs/evaluation.md):

    python3 -m venv ~/.cache/convrec/bench-venv && ~/.cache/convrec/bench-venv/bin/pip install implicit
    ~/.cache/convrec/bench-venv/bin/python scripts/eval_als.py DIR/ DIR/als.tsv
"""

import argparse
import csv
import math
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split_dir", help="folder with train.tsv and test_members.tsv")
    parser.add_argument("out", help="where to write member<TAB>sku lines")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--regularization", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=10.0,
                        help="confidence = 1 + alpha * log1p(purchase lines)")
    parser.add_argument("--top", type=int, default=60,
                        help="list length written; the scorer drops items the split "
                             "forbids, so this is longer than 10")
    parser.add_argument("--include-train-items", action="store_true",
                        help="do not filter items the customer bought before the cutoff")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    members, items = {}, {}
    rows, cols, counts = [], [], []
    with open(os.path.join(args.split_dir, "train.tsv"), newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            rows.append(members.setdefault(row["member"], len(members)))
            cols.append(items.setdefault(row["sku"], len(items)))
            counts.append(1.0)
    # Duplicate (member, item) entries are summed: the number of purchase lines.
    matrix = sp.csr_matrix((counts, (rows, cols)), shape=(len(members), len(items)))
    matrix.data = 1.0 + args.alpha * np.log1p(matrix.data)
    matrix = matrix.astype(np.float32)

    started = time.time()
    model = AlternatingLeastSquares(factors=args.factors, iterations=args.iterations,
                                    regularization=args.regularization,
                                    random_state=args.seed)
    model.fit(matrix, show_progress=False)
    fit_s = time.time() - started

    with open(os.path.join(args.split_dir, "test_members.tsv")) as f:
        test = [line.strip() for line in f.readlines()[1:] if line.strip()]
    known = [m for m in test if m in members]
    skus = {index: sku for sku, index in items.items()}
    user_ids = np.array([members[m] for m in known])
    ids, _scores = model.recommend(user_ids, matrix[user_ids], N=args.top,
                                   filter_already_liked_items=not args.include_train_items)
    with open(args.out, "w") as out:
        out.write("member\tsku\n")
        for member, row in zip(known, ids):
            for index in row:
                out.write(f"{member}\t{skus[int(index)]}\n")
    print(f"ALS: {len(members)} members x {len(items)} items, {matrix.nnz} pairs, "
          f"fit {fit_s:.1f}s, lists for {len(known)}/{len(test)} test customers -> {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
