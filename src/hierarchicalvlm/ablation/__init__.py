"""Long-sequence ablations: job summaries, resumable failure-tolerant sweeps, the report, the sweep as a DataFrame
(``load_sweep``), the max-length search."""

from .job import AblationJob, JobOutcome
from .summary import COMPLETED, FAILED, RUNNING, SUMMARY_FILE, read_summary
from .sweep import load_sweep

__all__ = ["AblationJob", "COMPLETED", "FAILED", "JobOutcome", "RUNNING", "SUMMARY_FILE", "load_sweep", "read_summary"]
