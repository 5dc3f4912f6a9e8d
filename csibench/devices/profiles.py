"""Built-in board profiles: published core counts, clocks, caches and memory of the boards users time on.

Figures are the vendors' published specifications (Raspberry Pi product briefs, NVIDIA Jetson Nano
module datasheet, Arm core manuals for cache sizes). ``local`` describes whatever machine csibench runs on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from csibench.errors import UsageError, suggest


@dataclass(frozen=True)
class BoardProfile:
    name: str
    board: str
    cpu: str
    cores: int
    clock_ghz: float | None
    l1d_kib_per_core: int | None
    l2_kib: int | None  # shared L2 (per cluster)
    l3_kib: int | None
    memory: str
    notes: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, BoardProfile] = {
    p.name: p
    for p in (
        BoardProfile("rpi4", "Raspberry Pi 4 Model B", "Cortex-A72 (BCM2711)", 4, 1.5, 32, 1024, None,
                     "1/2/4/8 GB LPDDR4-3200", "the seeds' device (004 Table IV); 1.8 GHz on boards from 2022"),
        BoardProfile("rpi5", "Raspberry Pi 5", "Cortex-A76 (BCM2712)", 4, 2.4, 64, 2048, 2048,
                     "2/4/8/16 GB LPDDR4X-4267", "512 KiB L2 per core, 2 MiB shared L3"),
        BoardProfile("rpi3b+", "Raspberry Pi 3 Model B+", "Cortex-A53 (BCM2837B0)", 4, 1.4, 32, 512, None, "1 GB LPDDR2"),
        BoardProfile("zero2w", "Raspberry Pi Zero 2 W", "Cortex-A53 (RP3A0)", 4, 1.0, 32, 512, None, "512 MB LPDDR2"),
        BoardProfile("jetson-nano", "NVIDIA Jetson Nano (CPU only)", "Cortex-A57", 4, 1.43, 32, 2048, None, "4 GB LPDDR4",
                     "csibench times its CPU; the GPU is not used"),
        BoardProfile("local", "this machine", "as fingerprinted", 0, None, None, None, None, "as fingerprinted",
                     "numbers come from the fingerprint of each run"),
    )
}


# The architectures (``platform.machine()``) a board's cores run: every profile above is an Arm board.
ARM_MACHINES = ("aarch64", "arm64", "armv7l", "armv8l", "armv6l")


def contradictions(profile_name: str | None, host: dict) -> list[str]:
    """What a device's probed facts (its fingerprint) say against its profile: its core count, its architecture.
    Empty for ``local`` (which is whatever was probed) and for a fact the probe could not read."""
    profile = PROFILES.get(profile_name or "local")
    if profile is None or profile.name == "local":
        return []
    found = []
    cores = host.get("logical_cores")
    if isinstance(cores, int) and cores != profile.cores:
        found.append(f"{cores} logical cores where profile {profile.name} ({profile.board}) has {profile.cores}")
    machine = host.get("machine")
    if machine and machine.lower() not in ARM_MACHINES:
        found.append(f"architecture {machine} where profile {profile.name} has {profile.cpu} (Arm) cores")
    return found


def get_profile(name: str) -> BoardProfile:
    if name not in PROFILES:
        raise UsageError(f"unknown device profile {name!r}; {suggest(name, list(PROFILES))}")
    return PROFILES[name]
