"""Pools the JSON files written by `convrec bench embeddings --json` and
scripts/bench_embeddings_st.py over several rounds and prints Markdown tables of median
throughput (embeddings/s): convrec against sentence-transformers per text kind and batch
size, and every measured backend against plain ndarray. Standard library only.

    python3 bench_embeddings_report.py --ours R1.json R2.json --baseline S1.json S2.json \
        [--backends B1.json B2.json ...]
"""

import argparse
import json
import statistics
from collections import defaultdict


def load(paths):
    """Runs from every file, each tagged with the round it came from (its position)."""
    runs = []
    for round_index, path in enumerate(paths):
        with open(path, encoding="utf-8") as f:
            for run in json.load(f):
                run["round"] = round_index
                runs.append(run)
    return runs


def label(run):
    """convrec runs by backend (and ndarray flavour), sentence-transformers by torch version;
    both with the thread count, so 1- and 2-thread runs are not pooled together."""
    threads = f'{run["threads"]} thread{"s" if run["threads"] != 1 else ""}'
    if run["implementation"] != "convrec":
        return f'{run["implementation"]} (torch {run["backend"].removeprefix("torch ")}, {threads})'
    return f'{run["backend"]} ({threads})'


def pooled(runs):
    """(label, kind, batch) -> {"seconds": [...], "tokens": mean, "rounds": {round: median}}."""
    cells = defaultdict(lambda: {"seconds": [], "tokens": [], "rounds": {}, "threads": set()})
    for run in runs:
        for cell in run["cells"]:
            entry = cells[(label(run), cell["kind"], cell["batch"])]
            entry["seconds"].extend(cell["seconds"])
            entry["tokens"].append(cell["mean_tokens"])
            entry["threads"].add(run["threads"])
            entry["rounds"][run["round"]] = statistics.median(cell["seconds"])
    return cells


def throughput(entry, batch):
    return batch / statistics.median(entry["seconds"])


def main_table(ours, baseline):
    ours_cells, base_cells = pooled(ours), pooled(baseline)
    ours_label = label(ours[0])
    base_label = label(baseline[0])
    lines = [
        f"| texts | tokens/text | batch | convrec: {ours_label} (emb/s) | "
        f"{base_label} (emb/s) | ratio | ratio per round |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    keys = sorted(
        {(k, b) for (_, k, b) in ours_cells},
        key=lambda kb: (kb[0] != "short", kb[1]),
    )
    for kind, batch in keys:
        mine = ours_cells.get((ours_label, kind, batch))
        theirs = base_cells.get((base_label, kind, batch))
        if not mine or not theirs:
            continue
        a, b = throughput(mine, batch), throughput(theirs, batch)
        per_round = [
            theirs["rounds"][r] / mine["rounds"][r]
            for r in sorted(set(mine["rounds"]) & set(theirs["rounds"]))
        ]
        lines.append(
            f"| {kind} | {statistics.mean(mine['tokens']):.1f} | {batch} | {a:.1f} | {b:.1f} | "
            f"**{a / b:.2f}×** | {', '.join(f'{r:.2f}' for r in per_round)} |"
        )
    return "\n".join(lines)


def backend_table(runs, batch):
    cells = pooled(runs)
    labels = []
    for run in runs:
        if label(run) not in labels:
            labels.append(label(run))
    reference = next((l for l in labels if l.startswith("ndarray (")), labels[0])
    lines = [
        f"| backend | short, batch {batch} (emb/s) | × ndarray | "
        f"long, batch {batch} (emb/s) | × ndarray |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in labels:
        row = [name]
        for kind in ("short", "long"):
            entry = cells.get((name, kind, batch))
            ref = cells.get((reference, kind, batch))
            if entry is None:
                row += ["–", "–"]
                continue
            value = throughput(entry, batch)
            rel = value / throughput(ref, batch) if ref else float("nan")
            row += [f"{value:.1f}", f"{rel:.2f}×"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", nargs="*", default=[])
    parser.add_argument("--baseline", nargs="*", default=[])
    parser.add_argument("--backends", nargs="*", default=[])
    parser.add_argument("--backend-batch", type=int, default=32)
    args = parser.parse_args()
    out = []
    if args.ours and args.baseline:
        out += ["### convrec vs sentence-transformers", "", main_table(load(args.ours), load(args.baseline)), ""]
    if args.backends:
        out += [
            f"### CPU backends (batch {args.backend_batch})",
            "",
            backend_table(load(args.backends), args.backend_batch),
            "",
        ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
