"""Numbers the seed papers publish, shown beside csibench's own and always labelled as published."""

from typing import TypedDict


class Published004(TypedDict):
    teacher: str  # model names
    student: str
    flops: dict[tuple[str, str], int]  # (model, CR) → FLOPs
    flops_ratio: dict[str, str]  # CR → student/teacher as printed
    latency_ms: dict[tuple[str, str], float]  # (model, CR) → ms
    latency_ratio: dict[str, str]
    latency_device: str


# Seed 004, Table III: UE FLOPs by eq. 13/14, and Table IV: encoder inference time on a Raspberry Pi 4
# (Cortex-A72, TensorFlow 2.4.1), in ms.
PAPER_004: Published004 = {
    "teacher": "crnet",
    "student": "crnet-se",
    "flops": {("crnet", "1/16"): 11_407_232, ("crnet-se", "1/16"): 601_984, ("crnet", "1/32"): 11_145_152, ("crnet-se", "1/32"): 339_904},
    "flops_ratio": {"1/16": "5.28%", "1/32": "3.05%"},
    "latency_ms": {("crnet", "1/16"): 2.681, ("crnet-se", "1/16"): 0.396, ("crnet", "1/32"): 2.638, ("crnet-se", "1/32"): 0.364},
    "latency_ratio": {"1/16": "14.76%", "1/32": "13.80%"},
    "latency_device": "Raspberry Pi 4 (Cortex-A72), TensorFlow 2.4.1",
}

# Seed 004, Tables II/VII (NMSE dB, QuaDRiGa UMi LOS, 100k training samples) and Table VIII (training hours, CR 1/16).
PAPER_004_NMSE = {
    ("1/16", "teacher"): -10.39, ("1/16", "student"): -8.50, ("1/16", "ae-kd"): -9.54, ("1/16", "encoder-kd"): -9.75,
    ("1/16", "variant-encoder-kd"): -9.61,
    ("1/32", "teacher"): -7.90, ("1/32", "student"): -7.11, ("1/32", "ae-kd"): -7.31, ("1/32", "encoder-kd"): -7.48,
    ("1/32", "variant-encoder-kd"): -7.45,
}
PAPER_004_TRAIN_HOURS = {"teacher": 3.88, "student": 3.64, "ae-kd": 3.71, "encoder-kd": 1.23}
