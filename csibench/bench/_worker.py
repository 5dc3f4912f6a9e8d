"""Torch measurement worker: ``python -m csibench.bench._worker`` reads one JSON request, writes one JSON line.

Safetensors artifacts need csibench to rebuild their module, so they cannot run in the device agent; they
run here, in a fresh process, with the agent's own protocol functions so the statistics mean the same.
"""

from __future__ import annotations

import sys
import time

from csibench.devices import agent


def run(req: dict) -> dict:
    import torch

    from csibench.bench.runtimes.torch_rt import load

    threads = int(req["threads"])
    protocol = {**agent.DEFAULT_PROTOCOL, **req["protocol"]}
    rss_baseline, _ = agent._rss()
    before = agent.thermal()
    loaded, loads, rss_after_load = [], [], []
    for art in req["artifacts"]:
        inputs = agent.make_inputs(art["manifest"]["inputs"], int(req["seed"]))
        t0 = time.perf_counter_ns()
        loaded.append(load(art["path"], art["manifest"], inputs, threads))
        loads.append((time.perf_counter_ns() - t0) / 1e9)
        rss_after_load.append(agent._rss()[0])
    with torch.inference_mode():  # entered once: entering it per call would be timed too
        results = agent.run_protocol(loaded, protocol)
    rss_after, peak = agent._rss()
    for result, load_s, rss_load in zip(results, loads, rss_after_load, strict=True):
        result.update(load_s=load_s, device_validation=None, rss_baseline_bytes=rss_baseline, rss_after_load_bytes=rss_load,
                      rss_after_sampling_bytes=rss_after, peak_rss_bytes=peak)
    return {"runtime": "torch", "impl": "torch", "runtime_version": torch.__version__, "threads": threads, "protocol": protocol,
            "thermal_before": before, "thermal_after": agent.thermal(), "host": agent.fingerprint(), "host_state": agent.state(),
            "results": results}


def main() -> int:
    return agent.serve(run)


if __name__ == "__main__":
    sys.exit(main())
