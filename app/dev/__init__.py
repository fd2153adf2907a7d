"""Local development helpers used by scripts/run.sh."""
