"""Benchmarking: grids of datasets x methods x seeds, result tables and plots."""

from .tables import fmt_mean_std, format_table, mean_std

__all__ = ["fmt_mean_std", "format_table", "mean_std"]
