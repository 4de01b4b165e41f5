"""The host target: this machine's kernel, measured through the FUSE faulty
block device under a loop device. Needs root and /dev/fuse (skipped
otherwise, with the reason). What is asserted is what Linux was measured to
do here; if a kernel changes it, these tests say so."""
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD, leftovers, load_results

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="host targets need root"),
    pytest.mark.skipif(not pathlib.Path("/dev/fuse").exists(), reason="no /dev/fuse"),
]

FILESYSTEMS = ["host:ext4", "host:xfs"]


@pytest.fixture(scope="module")
def seed_run(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("host") / "run"
    scratch = tmp_path_factory.mktemp("scratch")
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    args = ["run", "--case", "seed-*", "--out", out, "--no-progress"]
    for t in FILESYSTEMS:
        args += ["--target", t]
    proc = syncprobe(*args, check=True, env=env, timeout=900)
    return out, scratch, proc


@pytest.mark.parametrize("target", FILESYSTEMS)
def test_single_writer_on_linux(seed_run, target):
    out, _, _ = seed_run
    result, p = load_results(out, target, "seed-single-writer")
    assert result["status"] == "completed", result["reason"]
    assert result["environment"]["injector"] == "fuse-blockdev"
    assert result["environment"]["measured"] is True
    # The failed writeback is reported to the writer, once.
    assert p["report.first"]["errno"] == "EIO"
    assert p["report.first"]["fault_layer"] == "fuse-blockdev"
    assert p["report.first"]["injected"] >= 1
    # The cache keeps the new data until drop_caches, then serves the old.
    assert p["fate.read_cached"]["data"]["tag"] == "A"
    assert p["fate.read_after_drop"]["data"]["tag"] == "old"
    # The device still fails, but the error was already reported: success.
    assert p["report.again"]["ret"] == 0
    assert p["fate.fsync_after_heal"]["ret"] == 0
    # What is on disk after remount: the old data. Lost silently.
    assert p["single.disk"]["data"]["tag"] == "old"


@pytest.mark.parametrize("target", FILESYSTEMS)
def test_second_process_builds_on_unpersisted_data(seed_run, target):
    out, _, _ = seed_run
    result, p = load_results(out, target, "seed-two-process")
    assert result["status"] == "completed", result["reason"]
    assert p["cross.a_fsync"]["errno"] == "EIO"
    assert p["cross.b_read"]["data"]["tag"] == "A"
    assert p["cross.b_fsync"]["ret"] == 0
    assert p["cross.disk"]["data"]["tag"] == "old", "the corruption the seed thread describes"


@pytest.mark.parametrize("target", FILESYSTEMS)
def test_thin_pool_exhaustion(seed_run, target):
    out, _, _ = seed_run
    result, p = load_results(out, target, "seed-transient-recovery")
    assert result["status"] == "completed", result["reason"]
    assert p["recovery.first"]["ret"] == -1
    assert p["recovery.first"]["errno"] in ("ENOSPC", "EIO")
    assert p["recovery.retry"]["ret"] == 0, "the retry after growth reports success"
    assert p["recovery.disk"]["data"]["tag"] != "A", "but the data is not on disk"


def test_profiles_for_host_filesystems(seed_run):
    import json
    out, _, _ = seed_run
    summary = json.loads((pathlib.Path(out) / "summary.json").read_text())
    for t in FILESYSTEMS:
        prof = summary["targets"][t]["profile"]
        assert prof["cross_fd"] == "corrupts", (t, prof)
        assert prof["page_fate"] == "clean-kept", (t, prof)
        closest = summary["targets"][t]["closest_policies"]
        assert closest and all(p.startswith("linux-") for p in closest), (t, closest)


def test_nothing_left_after_a_run(seed_run):
    _, scratch, _ = seed_run
    assert leftovers(scratch) == []
    assert list(pathlib.Path(scratch).iterdir()) == [] or all(
        not p.is_dir() for p in pathlib.Path(scratch).iterdir())


def _wait_for_loop(scratch, proc, timeout=120):
    """True once the run has a loop device; fails with its output if it ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(x.startswith("loop") for x in leftovers(scratch)):
            return True
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended ({proc.returncode}) before attaching a loop device:\n"
                                 f"{out.decode()}\n{err.decode()}")
        time.sleep(0.05)
    return False


def _start_run(scratch, out):
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    return subprocess.Popen(
        [str(BUILD / "bin" / "syncprobe"), "run", "--target", "host:ext4",
         "--case", "seed-*", "--out", str(out), "--no-progress"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)


def test_killed_run_is_cleaned_up_by_the_next(syncprobe, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    victim = _start_run(scratch, tmp_path / "a")
    assert _wait_for_loop(scratch, victim), "the run never attached a loop device"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    left = leftovers(scratch)
    assert left, "kill -9 mid-case should leave something behind for this test to mean anything"
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    proc = syncprobe("run", "--target", "host:ext4", "--case", "seed-single-writer",
                     "--out", tmp_path / "b", "--no-progress", env=env, check=True)
    assert "stale" in proc.stderr or "cleaned up" in proc.stderr
    assert leftovers(scratch) == []


def test_interrupted_run_cleans_up(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = _start_run(scratch, tmp_path / "a")
    assert _wait_for_loop(scratch, run)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "interrupted" in err.decode()
    assert leftovers(scratch) == []
    assert (tmp_path / "a" / "run.json").exists(), "partial results are kept"


def test_host_targets_listed_with_availability(syncprobe):
    proc = syncprobe("list", "targets", check=True)
    for t in ["host:ext4", "host:ext4:data=journal", "host:ext4:nodelalloc", "host:xfs", "host:btrfs"]:
        assert t in proc.stdout


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
def test_without_root_host_targets_are_skipped_with_the_reason():
    import tempfile
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="syncprobe-noroot-"))  # pytest's tmp is root-only
    tmp_path.chmod(0o777)
    try:
        _run_as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run_as_nobody(tmp_path):
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(tmp_path / "scratch"))
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         str(BUILD / "bin" / "syncprobe"), "run", "--target", "host:ext4",
         "--target", "reference:proposed", "--case", "seed-single-writer",
         "--out", str(tmp_path / "out"), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    import json
    host = json.loads((tmp_path / "out" / "host:ext4" / "seed-single-writer.json").read_text())
    assert host["status"] == "skipped"
    assert "needs root" in host["reason"]
    ref = json.loads((tmp_path / "out" / "reference:proposed" / "seed-single-writer.json").read_text())
    assert ref["status"] == "completed", "the reference targets still run"


HANG_CASE = '''id = "{id}"
title = "a write that never completes"
description = "The device holds the write until healed; fsync cannot return."
step = [
  {{ op = "open", fd = "a" }},
  {{ op = "pwrite", fd = "a", len = "8K", tag = "old" }},
  {{ op = "fsync", fd = "a" }},
  {{ op = "fault", range = "data", io = "write", mode = "hang" }},
  {{ op = "pwrite", fd = "a", off = 0, len = "4K", tag = "A" }},
  {{ op = "fsync", fd = "a", probe = "hang.fsync" }},
  {{ op = "heal" }},
]
'''


def test_a_hung_step_ends_the_case_and_the_run_goes_on(syncprobe, tmp_path):
    import json
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "a-hang.toml").write_text(HANG_CASE.format(id="a-hang"))
    shutil.copy(pathlib.Path(__file__).parent.parent / "cases" / "seed-single-writer.toml", cases)
    scratch = tmp_path / "scratch"
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    syncprobe("run", "--cases", cases, "--target", "host:ext4", "--step-timeout", 2000,
              "--out", tmp_path / "out", "--no-progress", env=env, check=True, timeout=300)
    hung = json.loads((tmp_path / "out" / "host:ext4" / "a-hang.json").read_text())
    assert hung["status"] == "hung", hung["reason"]
    assert "did not return in time" in hung["reason"]
    last = hung["steps"][-1]
    assert last["op"] == "fsync" and last["hung"] is True
    assert "hangs until heal" in hung["environment"]["injector_log"]
    after = json.loads((tmp_path / "out" / "host:ext4" / "seed-single-writer.json").read_text())
    assert after["status"] == "completed", "the run goes on after a hung case"
    assert leftovers(scratch) == []


def test_device_mapper_injector_where_the_kernel_has_it(syncprobe, tmp_path):
    """SYNCPROBE_HOST_INJECTOR=dm: the VM targets' dm stack on a loop device
    of the host. This machine's kernel has no device-mapper, so here the
    target must say so; on one that has it, the seed case must run."""
    import json
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(tmp_path / "scratch"), SYNCPROBE_HOST_INJECTOR="dm")
    syncprobe("run", "--target", "host:ext4", "--case", "seed-single-writer", "--out", tmp_path / "out",
              "--no-progress", env=env, check=True)
    result, p = load_results(tmp_path / "out", "host:ext4", "seed-single-writer")
    if not pathlib.Path("/dev/mapper/control").exists() or shutil.which("dmsetup") is None:
        assert result["status"] == "skipped"
        assert "no device-mapper" in result["reason"]
        return
    assert result["status"] == "completed", result["reason"]
    assert p["report.first"]["errno"] == "EIO"
    fault = next(o for o in result["steps"] if o["op"] == "fault")
    assert "error_writes" in fault["detail"]["dm_table"]
    assert leftovers(tmp_path / "scratch") == []
