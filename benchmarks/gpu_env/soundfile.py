"""Stand-in for soundfile: imports, and raises on use (benchmarks/gpu_env/README.md)."""

from _standin import missing

__getattr__ = missing("soundfile")
