"""Long-sequence ablations: job summaries, resumable failure-tolerant sweeps, the report, the max-length search."""

from .job import AblationJob, JobOutcome
from .summary import COMPLETED, FAILED, RUNNING, SUMMARY_FILE, read_summary

__all__ = ["AblationJob", "COMPLETED", "FAILED", "JobOutcome", "RUNNING", "SUMMARY_FILE", "read_summary"]
