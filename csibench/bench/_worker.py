"""Torch measurement worker: ``python -m csibench.bench._worker`` reads one JSON request, writes one JSON line.

Safetensors artifacts need csibench to rebuild their module, so they cannot run in the device agent; they
run here, in a fresh process, with the agent's own protocol functions so the statistics mean the same.
"""

from __future__ import annotations

import math
import sys
import time

from csibench.devices import agent


CONFIRM_SAMPLES = 5


def calibrate_loops(call, target_s: float) -> tuple:
    """The agent's doubling calibration, then confirmed: eager torch calls keep getting faster after the doubling
    stops (one slow step ended it early), so the median of a few raw samples at the chosen loops must reach
    1.25 × target too, else the loops grow by the factor missing. Without this, torch raw samples were 0.57-0.77 ms
    for a 1 ms target."""
    loops, steps = agent.calibrate_loops(call, target_s)
    goal = 1.25 * target_s * 1e9
    for _ in range(16):
        raws = sorted(agent.timed(call, loops) for _ in range(CONFIRM_SAMPLES))
        median = raws[CONFIRM_SAMPLES // 2]
        steps.append([loops, median])
        if median >= goal or loops >= agent.MAX_LOOPS:
            break
        loops = min(agent.MAX_LOOPS, loops * 2 ** max(1, math.ceil(math.log2(goal / max(median, 1)))))
    return loops, steps


def run_protocol(loaded: list, protocol: dict) -> list:
    """``agent.run_protocol`` with the confirmed calibration above; the same first call, warm-up and samples."""
    firsts = [agent.timed(item.call, 1) for item in loaded]
    warmups = [agent.warm_up(item.call, protocol["warmup_s"], protocol["warmup_calls"]) for item in loaded]
    calibrations = [calibrate_loops(item.call, protocol["sample_target_s"]) for item in loaded]
    loops = [c[0] for c in calibrations]
    raws, was_certified = agent.sample([item.call for item in loaded], loops, protocol)
    return [
        {"first_inference_s": f / 1e9, "warmup": {**w, "calibration_steps": c[1]}, "loops": n,
         "raw_samples_ns": r, "per_call_s": [v / n / 1e9 for v in r], "certified": was_certified}
        for f, w, c, n, r in zip(firsts, warmups, calibrations, loops, raws, strict=True)
    ]


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
        results = run_protocol(loaded, protocol)
    rss_after, peak = agent._rss()
    for result, load_s, rss_load in zip(results, loads, rss_after_load, strict=True):
        result.update(load_s=load_s, device_validation=None, rss_baseline_bytes=rss_baseline, rss_after_load_bytes=rss_load,
                      rss_after_sampling_bytes=rss_after, peak_rss_bytes=peak)
    return {"runtime": "torch", "impl": "torch", "runtime_version": torch.__version__, "threads": threads, "protocol": protocol,
            "thermal_before": before, "thermal_after": agent.thermal(), "host": agent.fingerprint(), "results": results}


def main() -> int:
    return agent.serve(run)


if __name__ == "__main__":
    sys.exit(main())
