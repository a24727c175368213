"""The export flow on a full disk or an unusable folder (real flows, real files): it
stops with one clear error, leaves no partial or temporary file where readers look,
and, started again once the folder is usable, resumes and the dataset holds exactly the
readings stream.

Three ways to make the write fail: a size-limited tmpfs filled up (ENOSPC; mounting needs
root), a file-size limit on the process (RLIMIT_FSIZE: EFBIG, unprivileged), and an
export path that is a file, not a folder (unprivileged)."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from flowkit import flow_env, publish, scripted, start_flow, write_registry
from test_flows import init, readings, wait
from tidstream.flow.export import read_dataset

pytestmark = pytest.mark.nats


@pytest.fixture
def stream(nats_server, tmp_path):
    """(url, reading ids) after a real ingest run of 1,500 uplinks."""
    url = nats_server.url
    init(url)
    reg = write_registry(tmp_path / "registry.csv", 30)
    asyncio.run(publish(url, scripted(30, 1500, with_bad=False).uplinks))
    wait(start_flow("ingest", flow_env(url, reg, tmp_path), tmp_path / "rec-ingest"))
    return url, sorted(r["reading_id"] for r in readings(url))


def export_env(url: str, tmp_path: Path, export_dir: Path, block: int) -> dict[str, str]:
    return flow_env(
        url, None, tmp_path, TIDSTREAM_EXPORT_DIR=str(export_dir), TIDSTREAM_EXPORT_BLOCK_SIZE=str(block)
    )


def failed(proc: subprocess.Popen, *says: str) -> str:
    out, _ = proc.communicate(timeout=120)
    text = out.decode(errors="replace")
    assert proc.returncode != 0, text[-2000:]
    assert "The export stops here" in text, text[-3000:]
    for s in says:
        assert s in text, text[-3000:]
    return text


def readers_view_is_sound(root: Path, ids: list[str]) -> int:
    """Every file a reader can see is whole, holds only real readings, and no temporary
    file is left anywhere. Returns the rows visible."""
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    seen = 0
    for f in root.glob("date=*/readings-*.parquet"):
        t = pq.read_table(f)  # a partial file would not read
        assert set(t.column("reading_id").to_pylist()) <= set(ids)
        seen += t.num_rows
    return seen


def resumes_exactly(url: str, tmp_path: Path, export_dir: Path, block: int, ids: list[str]) -> None:
    wait(start_flow("export", export_env(url, tmp_path, export_dir, block), tmp_path / "rec-export"))
    assert sorted(read_dataset(export_dir).column("reading_id").to_pylist()) == ids
    readers_view_is_sound(export_dir, ids)


def test_full_disk_stops_clearly_and_resumes_when_space_returns(stream, tmp_path):
    if os.geteuid() != 0:
        pytest.skip(
            "mounting a size-limited tmpfs needs root: run this test as root (or with CAP_SYS_ADMIN); "
            "the unprivileged EFBIG and not-a-folder tests below cover the same code path"
        )
    url, ids = stream
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(
            f"root, but mount -t tmpfs failed ({r.stderr.strip()}): needs CAP_SYS_ADMIN in this container"
        )
    try:
        export_dir = mnt / "export"
        # Leave ~60 KB: the first blocks fit, then the disk is full.
        st = os.statvfs(mnt)
        ballast = mnt / "ballast"
        ballast.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 60 * 1024))
        failed(
            start_flow("export", export_env(url, tmp_path, export_dir, 100), tmp_path / "rec-export"),
            "No space left on device",
        )
        assert 0 < readers_view_is_sound(export_dir, ids) < len(ids)
        ballast.unlink()  # space returns
        resumes_exactly(url, tmp_path, export_dir, 100, ids)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_file_size_limit_efbig_stops_clearly_and_resumes(stream, tmp_path):
    url, ids = stream
    export_dir = tmp_path / "export"
    # One block of 1,500 readings, over 3 days: the biggest file is ~57 KB, above 40 KiB;
    # the recovery store's SQLite files (32 KiB) stay below. Python ignores SIGXFSZ, so
    # the write gets EFBIG.
    limit = 40 * 1024

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed(
        start_flow(
            "export",
            export_env(url, tmp_path, export_dir, 100_000),
            tmp_path / "rec-export",
            preexec_fn=small_files,
        ),
        "File too large",
    )
    # (a snapshot may have written the block's first rows while the file was still small)
    assert readers_view_is_sound(export_dir, ids) < len(ids)
    resumes_exactly(url, tmp_path, export_dir, 100_000, ids)


def test_export_path_that_is_a_file_stops_clearly_and_resumes(stream, tmp_path):
    url, ids = stream
    export_dir = tmp_path / "export"
    export_dir.write_text("not a folder")
    failed(
        start_flow("export", export_env(url, tmp_path, export_dir, 500), tmp_path / "rec-export"),
        f"export folder {export_dir} cannot be created",
    )
    assert export_dir.read_text() == "not a folder"  # left as it was
    export_dir.unlink()
    resumes_exactly(url, tmp_path, export_dir, 500, ids)
    shutil.rmtree(export_dir)
