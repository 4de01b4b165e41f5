"""host:btrfs faults through the chunk tree (issue 11 section 2): a data
fault fails the DATA block groups and nothing else, so btrfs keeps working;
a metadata fault fails METADATA, SYSTEM and the superblocks. Needs root,
/dev/fuse and btrfs (skipped otherwise, with the reason). What is asserted
is what 6.18 was measured to do, and what docs/probes/btrfs-data.sh shows
without syncprobe."""
import os
import pathlib
import shutil

import pytest

from conftest import load_results

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="host targets need root"),
    pytest.mark.skipif(not pathlib.Path("/dev/fuse").exists(), reason="no /dev/fuse"),
    pytest.mark.skipif(shutil.which("mkfs.btrfs") is None, reason="mkfs.btrfs missing (scripts/setup)"),
]

SUPERBLOCK = 65536  # the primary superblock, outside every chunk


@pytest.fixture(scope="module")
def btrfs_run(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("btrfs") / "run"
    scratch = tmp_path_factory.mktemp("scratch")
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    syncprobe("run", "--target", "host:btrfs", "--case", "seed-single-writer",
              "--case", "metadata-create-dir-fsync", "--out", out, "--no-progress",
              check=True, env=env, timeout=900)
    return out


def fault_step(result):
    [step] = [s for s in result["steps"] if s["op"] == "fault"]
    return step


def overlaps(a, b):
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def test_data_fault_fails_the_data_block_groups_and_btrfs_keeps_working(btrfs_run):
    result, p = load_results(btrfs_run, "host:btrfs", "seed-single-writer")
    assert result["status"] == "completed", result["reason"]
    detail = fault_step(result)["detail"]
    assert "widened" not in detail, detail
    assert detail["ranges_from"].startswith("btrfs chunk tree (DATA block groups")
    assert detail["ranges"], "at least the data block group mkfs made"
    assert detail["invert"] is False
    assert not any(overlaps(r, [SUPERBLOCK, 4096]) for r in detail["ranges"])
    # The one data write failed, nothing else: the writer is told once ...
    assert p["report.first"]["errno"] == "EIO"
    assert 1 <= sum(s.get("injected") or 0 for s in result["steps"]) <= 2
    assert p["report.again"]["ret"] == 0
    # ... and the filesystem did not go read-only: after repair fsync succeeds.
    assert p["fate.fsync_after_heal"]["ret"] == 0
    assert all(s.get("errno") != "EROFS" for s in result["steps"]), "no step saw a read-only btrfs"
    assert p["single.disk"]["data"]["tag"] == "old", "the failed write is lost"


def test_metadata_fault_fails_metadata_and_the_superblocks_not_data(btrfs_run):
    meta, _ = load_results(btrfs_run, "host:btrfs", "metadata-create-dir-fsync")
    data, _ = load_results(btrfs_run, "host:btrfs", "seed-single-writer")
    assert meta["status"] == "completed", meta["reason"]
    detail = fault_step(meta)["detail"]
    assert "widened" not in detail, detail
    assert "METADATA and SYSTEM" in detail["ranges_from"]
    assert [SUPERBLOCK, 4096] in detail["ranges"]
    # Both filesystems came from the same mkfs on the same size: the same layout.
    for d in fault_step(data)["detail"]["ranges"]:
        for m in detail["ranges"]:
            assert not overlaps(m, d), f"metadata range {m} overlaps data range {d}"
    # The metadata write failure aborts the transaction: btrfs turns read-only.
    assert any(s.get("errno") == "EROFS" for s in meta["steps"])


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server missing (scripts/setup --all)")
def test_redis_aof_on_btrfs_is_inline_so_the_fault_never_fires(syncprobe, tmp_path):
    """The AOF of the Redis cases is tens of bytes: btrfs keeps it inline in
    its metadata tree, out of the DATA block groups the fault fails, so the
    case measures nothing and must say so, not publish the healthy path as a
    verdict (docs/apps.md, "Redis on btrfs measures nothing")."""
    out = tmp_path / "run"
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(tmp_path / "scratch"))
    syncprobe("run", "--target", "host:btrfs", "--case", "app-redis-aof-always-fault-kept",
              "--out", out, "--no-progress", check=True, env=env, timeout=900)
    result, _ = load_results(out, "host:btrfs", "app-redis-aof-always-fault-kept")
    assert result["status"] == "error", result["status"]
    assert "the fault never fired" in result["reason"], result["reason"]
    detail = fault_step(result)["detail"]
    assert detail["ranges_from"].startswith("btrfs chunk tree (DATA block groups"), detail
    assert sum(s.get("injected") or 0 for s in result["steps"]) == 0
