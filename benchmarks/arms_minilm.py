"""Benchmark: all-MiniLM-L6-v2 embedding throughput, ``arms.minilm`` against sentence-transformers.

Question: how many item texts per second does the BERT arm embed, at batch sizes 1, 32
and 256, compared with ``sentence-transformers`` on the same model files and inputs,
and are its bfloat16 embeddings still equal to fp32 ones (cosine >= 0.99)?

Methods (same texts, same thread count, one run):

* ``sentence-transformers``: ``SentenceTransformer(<package folder>).encode`` (it sorts
  by length too), normalised;
* ``arms fp32``: :class:`arms.minilm.MiniLMEncoder` in float32, length-bucketed;
* ``arms auto``: the same in its default precision (bf16 on a CPU with native bf16,
  fp16 on CUDA, else fp32).

Texts: MovieLens-100K item texts (title plus genres) when ``--data`` exists, else
synthetic titles. Batch size 1 embeds only ``--batch1-texts`` texts (it is slow).
Quick run: ``python benchmarks/arms_minilm.py --texts 128 --batch-sizes 1,32``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from arms_common import print_table, time_interleaved, write_json

from arms.data import load_movielens_100k
from arms.minilm import MiniLMEncoder, model_dir

RESULTS = Path(__file__).resolve().parent / "results" / "arms_minilm.json"
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ml-100k"


def load_texts(data: Path, n: int) -> tuple[list[str], str]:
    if (data / "u.data").is_file():
        texts = list(load_movielens_100k(data).items.texts)
        source = "ml-100k item texts"
    else:
        words = ["Star", "Love", "Night", "Galaxy", "Paris", "Ghost", "Heart", "Robot"]
        texts = [
            f"{words[i % 8]} {words[(i // 8) % 8]} ({1950 + i % 50}). Genres: Drama, Comedy"
            for i in range(n)
        ]
        source = "synthetic titles"
    return (texts * (n // len(texts) + 1))[:n], source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batch1-texts", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,32,256")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    texts, source = load_texts(args.data, args.texts)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows: list[dict[str, Any]] = []
    for device in devices:
        st = SentenceTransformer(str(model_dir()), device=device)
        fp32 = MiniLMEncoder(device=device, precision="fp32")
        auto = MiniLMEncoder(device=device, precision="auto")
        sync = torch.cuda.synchronize if device == "cuda" else None
        reference = fp32.embed(texts, batch_size=32)
        methods = {
            "sentence-transformers": lambda t, b, m=st: (
                m.encode(t, batch_size=b, convert_to_tensor=True, normalize_embeddings=True)
                .float()
                .cpu()
            ),
            "arms fp32": lambda t, b, m=fp32: m.embed(t, batch_size=b),
            f"arms auto ({str(auto.dtype).removeprefix('torch.')})": lambda t, b, m=auto: m.embed(
                t, batch_size=b
            ),
        }
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            subset = texts[: args.batch1_texts] if batch == 1 else texts
            timings = time_interleaved(
                {name: (lambda f=fn, s=subset, b=batch: f(s, b)) for name, fn in methods.items()},
                args.repeats,
                sync,
            )
            base = None
            for name, fn in methods.items():
                emb = fn(subset, batch)
                rate = len(subset) / timings[name]["best_s"]
                base = base or rate
                rows.append(
                    {
                        "device": device,
                        "batch": batch,
                        "method": name,
                        "texts": len(subset),
                        "best_s": timings[name]["best_s"],
                        "items_per_s": rate,
                        "x_sentence_transformers": rate / base,
                        "min_cosine_vs_fp32": float((emb * reference[: len(subset)]).sum(1).min()),
                    }
                )
    load = os.getloadavg()
    title = (
        f"MiniLM-L6 embedding throughput, {source}, {torch.get_num_threads()} threads, "
        f"best of {args.repeats}, interleaved; load average {load[0]:.1f}"
    )
    print_table(
        title,
        rows,
        [
            "device",
            "batch",
            "method",
            "texts",
            "best_s",
            "items_per_s",
            "x_sentence_transformers",
            "min_cosine_vs_fp32",
        ],
    )
    write_json(
        args.out,
        {"args": {k: str(v) for k, v in vars(args).items()}, "source": source, "rows": rows},
    )


if __name__ == "__main__":
    main()
