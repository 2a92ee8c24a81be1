"""The per-user cache for what is built on first use (the tiny checkpoint, prepared copies of raw inputs), and the
lock that makes each build happen once when several processes start together (two fits, DDP ranks, a test run)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """``$QWEN_TTS_LIT_CACHE``, else ``$XDG_CACHE_HOME/qwen_tts_lit``, else ``~/.cache/qwen_tts_lit``."""
    if os.environ.get("QWEN_TTS_LIT_CACHE"):
        return Path(os.environ["QWEN_TTS_LIT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "qwen_tts_lit"


def lock_path(target: Path) -> Path:
    """The lock file that guards building ``target``: a hidden sibling, so it never sits inside the build."""
    return target.parent / f".{target.name}.lock"


@contextmanager
def build_lock(target: Path | str) -> Iterator[None]:
    """Hold the lock on building ``target`` (an OS file lock: released when the process dies, however it dies).

    The caller checks inside the block whether ``target`` is finished and builds it only if not, so a second
    process waits for the first one's build and then reuses it. Says so on stderr while it waits.
    """
    from filelock import FileLock, Timeout

    target = Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(target)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another process that is building {target} ...", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
