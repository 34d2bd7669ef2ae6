"""The baseline for `convrec bench embeddings`: Python sentence-transformers on the same
texts, batch sizes and timing rules, from the same model directory, writing the same JSON
shape (a list of runs with per-batch seconds). Run by scripts/bench-embeddings.sh in its own
virtual environment:

    python bench_embeddings_st.py --model DIR --texts texts.json --json out.json \
        [--kinds short,long] [--batch-sizes 1,8,32,128] [--threads 2] ...
"""

import argparse
import json
import statistics
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--texts", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--kinds", default="short,long")
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--min-batches", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-batches", type=int, default=2000)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu")
    tokenizer = model.tokenizer
    with open(args.texts, encoding="utf-8") as f:
        sets = json.load(f)

    print(
        f"sentence-transformers on torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)",
        file=sys.stderr,
    )
    cells = []
    for kind in args.kinds.split(","):
        pool = sets[kind]
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            state = {"next": 0}

            def take():
                start = state["next"]
                state["next"] = (start + batch) % len(pool)
                return [pool[(start + i) % len(pool)] for i in range(batch)]

            def embed(texts):
                return model.encode(
                    texts,
                    batch_size=batch,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )

            for _ in range(args.warmup):
                embed(take())
            seconds, tokens, seen = [], 0, 0
            started = time.perf_counter()
            while len(seconds) < args.max_batches and (
                len(seconds) < args.min_batches
                or time.perf_counter() - started < args.seconds
            ):
                texts = take()
                tokens += sum(
                    len(ids)
                    for ids in tokenizer(texts, truncation=True, max_length=model.max_seq_length)[
                        "input_ids"
                    ]
                )
                seen += len(texts)
                t0 = time.perf_counter()
                vectors = embed(texts)
                seconds.append(time.perf_counter() - t0)
                assert len(vectors) == batch
            median = statistics.median(seconds)
            print(
                f"  {kind:<5} batch {batch:>3}: {batch / median:>8.1f} embeddings/s "
                f"(median of {len(seconds)} batches, {tokens / seen:.1f} tokens/text)",
                file=sys.stderr,
            )
            cells.append(
                {
                    "kind": kind,
                    "batch": batch,
                    "mean_tokens": tokens / seen,
                    "seconds": seconds,
                }
            )
    run = {
        "implementation": "sentence-transformers",
        "backend": f"torch {torch.__version__}",
        "build": "PyPI",
        "threads": torch.get_num_threads(),
        "cells": cells,
    }
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump([run], f, indent=1)


if __name__ == "__main__":
    main()
