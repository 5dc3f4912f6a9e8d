"""Train and score the multi-user systems on their Sionna data: 000's JEFPNet vs its separate baselines (SEFPNet,
SVD-WF), 001's RCA-MUNet vs BL1, 002's RVQ-EGAT vs zero-forcing with perfect CSI.

Usage: .venv/bin/python benchmarks/multiuser.py [--samples 1000] [--epochs 10] [--only 000,001,002] [--out DIR]

Each paper's preset dataset (80/10/10 split of ``--samples``) is generated once, every system trains with its
paper's recipe for ``--epochs`` epochs per stage (batch 50, 1 thread), and one Markdown row per system gives the test
figure, per UE, and the training wall time. A scaled-down run: report what it shows, never tune to the papers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from csibench.data.sionna_mu import MuGenConfig, generate_mu
from csibench.models import create_model
from csibench.train import TrainConfig
from csibench.train.system import build_for, evaluate_system, train_system

SYSTEMS = {"000": ("jefpnet", "sefpnet", "svd-wf"), "001": ("rcamunet", "rcamunet-bl1"), "002": ("rvq-egat", "zf")}


def figure(metrics: dict) -> str:
    if "sum_se" in metrics:
        per_ue = ", ".join(f"{v:.2f}" for v in metrics["per_ue_se_per_subcarrier"])
        return f"sum SE / Nc {metrics['sum_se_per_subcarrier']:.3f} bit/s/Hz (per UE {per_ue})"
    if "sum_rate" in metrics:
        return f"sum rate {metrics['sum_rate']:.2f} bit/s/Hz (per UE {', '.join(f'{v:.2f}' for v in metrics['per_ue_rate'])})"
    return f"NMSE {metrics['nmse_db']:.2f} dB (per UE {', '.join(f'{v:.2f}' for v in metrics['per_ue_nmse_db'])})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--only", default="000,001,002")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.samples
    out = args.out or Path(tempfile.mkdtemp(prefix="csibench-mu-"))
    print("| paper | system | weights | test figure (1 thread) | training wall s |")
    print("|---|---|---|---|---|")
    for paper in args.only.split(","):
        users = {"001": 2}.get(paper)  # 001's Table I runs 2 UEs
        ds = generate_mu(MuGenConfig.for_paper(paper, n_train=n - 2 * (n // 10), n_val=n // 10, n_test=n // 10,
                                               **({"users": users} if users else {})))
        for name in SYSTEMS[paper]:
            if not any(True for _ in create_model(name).parameters()):
                print(f"| {paper} | {name} | none | {figure(evaluate_system(build_for(name, ds), ds))} | – |", flush=True)
                continue
            untrained = evaluate_system(build_for(name, ds), ds)
            print(f"| {paper} | {name} | untrained | {figure(untrained)} | – |", flush=True)
            start = time.perf_counter()
            result = train_system(name, ds, out / f"{paper}-{name}", TrainConfig(epochs=args.epochs, batch_size=50, seed=0, threads=1))
            wall = time.perf_counter() - start
            stages = "+".join(s.name for s in result.stages)
            print(f"| {paper} | {name} | trained ({stages}, {args.epochs} epochs each) | {figure(result.metrics)} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
