"""Benchmarks: many instances x solvers x seeds under hard time limits, one parquet file, summaries and plots."""

from opsrl.bench.report import write_report
from opsrl.bench.runner import run_benchmark
from opsrl.bench.store import read_results, write_results
from opsrl.bench.summary import format_table, summarize

__all__ = ["format_table", "read_results", "run_benchmark", "summarize", "write_report", "write_results"]
