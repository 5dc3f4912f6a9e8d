"""Studies: what to compare (models, weights, formats, runtimes, devices, protocol) as data, and the runner.

``load_study("zoo")`` or ``load_study("my-study.toml")`` → :class:`Study`; ``narrow`` applies the CLI's overrides;
``run_study`` trains or reuses weights, exports or reuses artifacts, measures and writes the study's report.
"""

from csibench.studies.spec import ModelSpec, Study, Weights, builtin_names, load_study, narrow

__all__ = ["ModelSpec", "Study", "Weights", "builtin_names", "load_study", "narrow", "run_study"]


def run_study(*args, **kwargs):
    from csibench.studies.runner import run_study as run

    return run(*args, **kwargs)
