"""Shared fixtures. Everything runs offline on CPU against the real qwen_tts classes and a tiny checkpoint."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock

# Prove that nothing reaches for a model hub: these make transformers/huggingface_hub fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One intra-op thread per process (the subprocess fits, DDP ranks and notebook kernels inherit it): two xdist workers
# already fill the two cores, and torch's default (a thread per core) made every op on more than 2048 elements wait
# for the busy other core, about 8 ms each: `evaluate` of one sentence with its baselines took 31.6 CPU-s on two
# threads and 6.7 on one. Tests that need another thread count set it themselves.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:  # imported by a plugin before this file: the variable came too late for it
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_RAW = REPO_ROOT / "data" / "demo" / "raw" / "train_raw.jsonl"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


# The heaviest files after tests/e2e/, heaviest first (CPU-seconds of a whole run, pytest --durations): handed out
# early, they leave the many cheap files to even out the two workers' ends. A file not listed runs after them.
# test_speech_rate.py (its known-pace test alone ~35 CPU-s) and test_multilingual_judge.py (~35 s in a whole run's
# --durations, most of it its module fixture) were missing, so each could start last and run alone at the end.
HEAVY_FILES = (
    "test_slurm_ablate.py", "test_long_form.py", "test_speech_rate.py", "test_rescore.py", "test_multilingual_judge.py",
    "test_synthesizer.py", "test_prepare_pipeline.py", "test_export_speakers.py", "test_export.py",
    "test_step_consistency.py", "test_fit_languages.py", "test_segment_pipeline.py", "test_fit_faults.py",
    "test_baselines.py", "test_eval_cost.py", "test_gpu_check.py", "test_instruct_probe_fit.py",
    "test_fit_custom_voice_probe.py", "test_presets_kept_fit.py",
    "test_listen_browser.py",
    "test_rl_learning.py", "test_rl_start.py",
)  # fmt: skip


# The lanes (docs/testing.md): `make test` runs every test, `make test-fast` those not marked slow. A test is slow when
# it runs a subprocess fit: every test in tests/e2e/, and every test that needs a fixture named here (the session's
# demo run is a subprocess `fit` of the demo config). Marked here, by rule, rather than in each file, so a new test
# that asks for the demo run leaves the fast lane by itself; helpers/fit.py refuses a subprocess run in a test that
# is not marked, so a fit the rule misses fails in every lane instead of slowing the fast one.
SLOW_FIXTURES = ("demo_run",)


def is_slow(item: pytest.Item) -> bool:
    """Whether ``item`` belongs to the slow lane: marked by hand, in tests/e2e/, or needing a SLOW_FIXTURES fixture
    (``fixturenames`` is the closure: a fixture that needs the demo run counts too)."""
    needs = getattr(item, "fixturenames", ())
    return bool(item.get_closest_marker("slow")) or "e2e" in item.path.parts or any(f in needs for f in SLOW_FIXTURES)


def mark_lanes(items: list[pytest.Item], cuda: bool | None = None) -> None:
    """Adds ``slow`` where :func:`is_slow` says so, and a skip to every ``gpu`` test when CUDA is absent (``cuda``:
    whether it is present; asked of torch only when a gpu test was collected, so a CPU-only collection imports no
    torch for it)."""
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu and cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    for item in gpu if not cuda else ():
        item.add_marker(pytest.mark.skip(reason="needs CUDA (a gpu test)"))


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by -m, so -m "not slow" sees these marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the lanes (:func:`mark_lanes`), then orders the files: the end-to-end files first (subprocess fits, the
    heaviest), then HEAVY_FILES, then the rest in collection order: with two workers and --no-loadscope-reorder
    (pyproject's addopts) xdist hands files out in this order, so the long ones start at once, instead of one
    starting last and running alone at the end."""
    mark_lanes(items)

    def rank(item: pytest.Item) -> int:
        if "e2e" in item.path.parts:
            return 0
        return 1 + HEAVY_FILES.index(item.path.name) if item.path.name in HEAVY_FILES else 1 + len(HEAVY_FILES)

    items.sort(key=rank)


def pytest_configure(config: pytest.Config) -> None:
    import helpers.fit

    helpers.fit.SUBPROCESS_RUNS_ALLOWED = False  # until a test marked slow opens it (below)


@pytest.hookimpl(tryfirst=True)  # before the fixtures of the test are set up (the demo run is built in its setup)
def pytest_runtest_setup(item: pytest.Item) -> None:
    import helpers.fit

    helpers.fit.SUBPROCESS_RUNS_ALLOWED = item.get_closest_marker("slow") is not None


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder every worker of this session sees: under pytest-xdist the workers' common parent, else the basetemp."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


@contextmanager
def built_once(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """(folder, done) under a lock: the first worker builds what ``name`` holds and marks it done; the others wait
    for the lock and reuse it."""
    folder = shared_folder(tmp_path_factory, name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f"{name}.lock")):
        done = folder / ".done"
        yield folder, done.is_file()
        folder.mkdir(parents=True, exist_ok=True)
        done.touch()


@pytest.fixture(scope="session")
def fit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """QWEN_TTS_LIT_CACHE with the tiny checkpoint built and the shipped demo corpus prepared, once per session (about
    15 s): what every in-process test and every subprocess fit but the first-use demo fit starts from."""
    from qwen_tts_lit.data.dataset import prepared_cache_dir
    from qwen_tts_lit.data.prepare import PrepareOptions, prepare
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    with built_once(tmp_path_factory, "qwen_tts_lit_cache") as (cache, done), pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(cache))
        if not done:
            make_tiny(default_tiny_dir())
            prepare(PrepareOptions(input=DEMO_RAW, output=prepared_cache_dir(str(DEMO_RAW), "tiny"), model="tiny",
                                   progress=False))  # fmt: skip
    return cache


@pytest.fixture(scope="session")
def tiny_dir(fit_cache: Path) -> Path:
    """The tiny checkpoint of the session's cache."""
    from qwen_tts_lit.upstream.tiny import recipe_fingerprint

    return fit_cache / f"tiny-{recipe_fingerprint()}"


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path):
    """The tiny checkpoint loaded through the official wrapper, ``qwen_tts.Qwen3TTSModel``."""
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    return import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_dir))


@pytest.fixture(scope="session")
def tiny_custom_voice_dir(fit_cache: Path) -> Path:
    """The tiny custom_voice checkpoint (presets vivian, ryan, dylan with a dialect; no speaker encoder), built into
    the session's cache (under 1 s; make_tiny's own lock makes workers share one build), where the model source
    "tiny_custom_voice" finds it."""
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(fit_cache))
        return make_tiny(default_tiny_dir("custom_voice"), "custom_voice")


@pytest.fixture(scope="session")
def tiny_custom_voice(tiny_custom_voice_dir: Path):
    """The tiny custom_voice checkpoint loaded through the official wrapper."""
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    return import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_custom_voice_dir))


@pytest.fixture(scope="session")
def prepared_demo(fit_cache: Path) -> Path:
    """The shipped demo corpus prepared for the tiny checkpoint (the session cache's copy; do not modify it)."""
    from qwen_tts_lit.data.dataset import prepared_cache_dir

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(fit_cache))
        return prepared_cache_dir(str(DEMO_RAW), "tiny")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch ``fit --config configs/demo.yaml`` run folder (checkpoints, metrics, eval outputs), built
    once per session. It starts from an EMPTY cache of its own, as a fresh clone does: it builds the tiny checkpoint
    and prepares the corpus on first use (tests/e2e/test_fit.py checks both)."""
    from helpers.fit import latest_run, run_demo_fit

    with built_once(tmp_path_factory, "demo_fit") as (workdir, done):
        if not done:
            run_demo_fit(workdir, "--trainer.max_epochs", "2", cache=workdir / "first_use_cache")
    return latest_run(workdir)


@pytest.fixture(scope="module")
def run_cache(fit_cache: Path):
    """In-process code that resolves a run's base model "tiny" finds the cache the demo fit built (no second build)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(fit_cache))
        yield


@pytest.fixture(scope="module")
def demo_run_copy(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module's own copy of the demo run without best.json (its tests say which epoch and scale)."""
    from helpers.runs import copy_run

    return copy_run(demo_run, tmp_path_factory.mktemp("run") / "version_0")


@pytest.fixture(scope="session")
def speaker_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three espeak-ng voices (ann, bob, cleo), four clips each: the manifest (a ``speaker`` field per row); the same
    clips sit beside it as a folder per speaker (``by_folder/``)."""
    from helpers.speakers import write_speaker_corpus

    with built_once(tmp_path_factory, "speaker_corpus") as (folder, done):
        if not done:
            write_speaker_corpus(folder)
    return folder / "manifest.jsonl"


@pytest.fixture(scope="session")
def prepared_speakers(speaker_corpus: Path, fit_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``speaker_corpus`` prepared for the tiny checkpoint, once per session (do not modify it)."""
    from qwen_tts_lit.data.prepare import PrepareOptions, prepare

    with built_once(tmp_path_factory, "prepared_speakers") as (folder, done), pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(fit_cache))
        if not done:
            prepare(PrepareOptions(input=speaker_corpus, output=folder / "data", model="tiny", progress=False))
    return folder / "data"


@pytest.fixture(scope="session")
def multilingual_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multilingual faster-whisper model folder (Whisper base, from the dev extra's packages: helpers/whisper.py),
    assembled once per session: what tests give as ``judges.asr_model`` to score speech in other languages."""
    from helpers.whisper import assemble_multilingual_whisper

    with built_once(tmp_path_factory, "multilingual_whisper") as (folder, done):
        if not done:
            assemble_multilingual_whisper(folder)
    return folder
