"""Numbers the seed papers publish, shown beside csibench's own and always labelled as published."""

# Seed 004, Table III: UE FLOPs by eq. 13/14, and Table IV: encoder inference time on a Raspberry Pi 4
# (Cortex-A72, TensorFlow 2.4.1), in ms.
PAPER_004 = {
    "teacher": "crnet",
    "student": "crnet-se",
    "flops": {("crnet", "1/16"): 11_407_232, ("crnet-se", "1/16"): 601_984, ("crnet", "1/32"): 11_145_152, ("crnet-se", "1/32"): 339_904},
    "flops_ratio": {"1/16": "5.28%", "1/32": "3.05%"},
    "latency_ms": {("crnet", "1/16"): 2.681, ("crnet-se", "1/16"): 0.396, ("crnet", "1/32"): 2.638, ("crnet-se", "1/32"): 0.364},
    "latency_ratio": {"1/16": "14.76%", "1/32": "13.80%"},
    "latency_device": "Raspberry Pi 4 (Cortex-A72), TensorFlow 2.4.1",
}
