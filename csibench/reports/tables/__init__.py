"""One module per report table (``ID`` and ``build(view) -> Table | None``); csibench.reports.registry lists them."""
