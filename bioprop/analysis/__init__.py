"""The analysis of run files (later issues: metrics, figures)."""
