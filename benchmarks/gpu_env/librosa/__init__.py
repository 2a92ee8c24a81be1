"""Stand-in for librosa: ``filters.mel`` for real, the rest raises on use (benchmarks/gpu_env/README.md)."""

from _standin import missing

from librosa import filters  # noqa: F401

__getattr__ = missing("librosa")
