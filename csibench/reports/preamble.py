"""The report's opening: which devices measured, their fingerprints, and what failed."""

from __future__ import annotations

import datetime as dt
import json


def preamble(rows: list[dict], failures: list[dict] | None = None) -> str:
    hosts: dict[str, dict] = {}
    for row in rows:
        hosts[row["device"]] = {**json.loads(row["host_json"]), "runtime_impl": row.get("runtime_impl")}
    lines = ["# csibench report: seed 004 teacher (CRNet) vs student (CRNet-SE)", ""]
    lines.append(f"Generated {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} from {len(rows)} measurement(s).")
    lines.append("All latencies are measured by csibench on the devices below; published values are labelled as such.")
    lines.append("")
    for device, host in hosts.items():
        versions = ", ".join(f"{k} {v}" for k, v in (host.get("runtime_versions") or {}).items() if v)
        board = f"{host['board']}, " if host.get("board") else ""
        thermal = ", ".join(f"{k} {host[k]}" for k in ("temperature_c", "throttled", "cpu_freq_current_mhz") if host.get(k) is not None)
        lines.append(f"- device **{device}**: {board}{host.get('cpu_model')}, {host.get('logical_cores')} logical cores, governor "
                     f"{host.get('governor') or 'unreadable'}, {host.get('os')}, Python {host.get('python')}"
                     + (f"; {thermal}" if thermal else "") + f"; {versions}")
    if failures:
        lines += ["", f"{len(failures)} measurement(s) could not be made:"]
        lines += [f"- {f['device']}: {f['model']} CR {f['cr']} on {f['runtime']}: {f['reason']}" for f in failures[-10:]]
    return "\n".join(lines) + "\n"
