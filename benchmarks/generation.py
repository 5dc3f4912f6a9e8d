"""Samples per second of Sionna channel generation: 004's single-user set and the 000/001/002 multi-user presets.

Usage: .venv/bin/python benchmarks/generation.py [--samples 1000] [--only 004,000,001,002]

Each run generates ``--samples`` samples (80/10/10 split) in this process, after one small warm-up generation that
pays Sionna's import and first-call costs, and prints one Markdown row: samples/s, user-links/s (users × links per
sample) and the peak RSS growth. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import time

from csibench.data import GenConfig, generate
from csibench.data.sionna_mu import MuGenConfig, generate_mu


def sizes(n: int) -> dict[str, int]:
    return {"n_train": n - 2 * (n // 10), "n_val": n // 10, "n_test": n // 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--only", default="004,000,001,002")
    args = parser.parse_args()
    print("| preset | what a sample holds | samples | seconds | samples/s | user-links/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.only.split(","):
        if preset == "004":
            make, what, links = (lambda n: generate(GenConfig(**sizes(n)))), "1 user, 32 ant × 32 sc (UMi LOS)", 1
        else:
            cfg = MuGenConfig.for_paper(preset)
            links = cfg.users * (2 if cfg.uplink_frequency else 1)
            what = f"{cfg.users} users × {cfg.antennas} ant × {cfg.num_subcarriers} sc, {cfg.scenario}" + (", DL+UL" if cfg.uplink_frequency else "")
            make = lambda n, p=preset: generate_mu(MuGenConfig.for_paper(p, **sizes(n)))  # noqa: E731
        make(20)  # warm-up: imports, first-call allocations
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        make(args.samples)
        seconds = time.perf_counter() - start
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        rate = args.samples / seconds
        print(f"| {preset} | {what} | {args.samples} | {seconds:.1f} | {rate:.0f} | {rate * links:.0f} | +{rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
