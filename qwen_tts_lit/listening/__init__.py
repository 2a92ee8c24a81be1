"""Blind listening tests: building the bundle and analysing its ratings (docs/listening_analysis.md)."""
