"""prepare onto a read-only or full output: exit 2 (read-only, found before anything is written) or exit 1 (full,
one line), and a re-run once there is room finishes with the same bytes as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

from helpers.faults import fake_disk, mounted_tmpfs, remount
from helpers.prepare import demo_rows, write_jsonl

from qwen_tts_lit import cli

RESUME = "then run the same command again to resume (finished clips are reused, the output is the same)"


def _manifest(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "m.jsonl", demo_rows()[:2])


def _prepare(manifest: Path, output: Path, tiny_dir: Path) -> int:
    args = ["--input", str(manifest), "--output", str(output), "--model", str(tiny_dir), "--progress", "false"]
    return cli.main(["prepare", *args])


def _same_clips_as_the_demo(output: Path, prepared_demo: Path) -> None:
    """Per-clip outputs do not depend on which other clips are prepared with them: compare with the session's."""
    for folder, suffix in (("audio", ".wav"), ("codes", ".npy")):
        names = sorted(p.name for p in (output / folder).iterdir())
        assert names == [f"utt_001{suffix}", f"utt_002{suffix}"]
        assert all((output / folder / n).read_bytes() == (prepared_demo / folder / n).read_bytes() for n in names)


def test_a_read_only_output_is_refused_before_anything_is_written(tmp_path: Path, capsys, tiny_dir):
    with mounted_tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        assert _prepare(_manifest(tmp_path), read_only / "prepared", tiny_dir) == 2
        err = capsys.readouterr().err
        assert f"{read_only}/prepared: --output: {read_only} is not writable (a read-only file system" in err


def test_a_simulated_read_only_output_stops_with_one_line(tmp_path: Path, capsys, tiny_dir, monkeypatch):
    fake_disk(monkeypatch, read_only=True)
    assert _prepare(_manifest(tmp_path), tmp_path / "prepared", tiny_dir) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {tmp_path}/prepared/") and "cannot write: the file system is read-only" in line
    assert not (tmp_path / "prepared" / "train.jsonl").exists()


def test_a_full_tmpfs_stops_with_one_line_and_a_rerun_with_room_finishes(tmp_path, capsys, tiny_dir, prepared_demo):
    with mounted_tmpfs(tmp_path / "disk", "120k") as disk:
        output = disk / "prepared"
        assert _prepare(_manifest(tmp_path), output, tiny_dir) == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert "cannot write: no space left on the device" in line and line.endswith(RESUME)
        remount(disk, "size=16m")  # the user freed space
        assert _prepare(_manifest(tmp_path), output, tiny_dir) == 0
        _same_clips_as_the_demo(output, prepared_demo)


def test_a_simulated_full_disk_stops_with_one_line_and_a_rerun_finishes(
    tmp_path, capsys, tiny_dir, prepared_demo, monkeypatch
):
    output = tmp_path / "prepared"
    disk = fake_disk(monkeypatch, free=100_000)  # the first clip's audio fits, not much more
    assert _prepare(_manifest(tmp_path), output, tiny_dir) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {output}/") and "no space left on the device" in line and line.endswith(RESUME)
    assert disk.failures and not (output / "train.jsonl").exists()
    monkeypatch.undo()
    assert _prepare(_manifest(tmp_path), output, tiny_dir) == 0
    _same_clips_as_the_demo(output, prepared_demo)
