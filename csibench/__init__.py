"""csibench: complexity, export and on-device latency of deep-learning CSI-feedback models."""

__version__ = "0.1.0"
