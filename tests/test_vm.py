"""VM targets: a Debian kernel booted under QEMU (TCG here), device-mapper
faults in the guest. CI fetches the 6.1 kernel first (.ci/run); without it
the tests are skipped with the command that fixes it."""
import json
import os
import pathlib
import shutil

import pytest

from conftest import ROOT, leftovers, load_results

CACHE = pathlib.Path(os.environ.get("SYNCPROBE_CACHE", ROOT / ".cache")) / "vm"


def kernel_present(series):
    release = CACHE / "kernels" / series / "release"
    return release.exists() and release.read_text().strip() != ""


pytestmark = [
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                       reason="qemu-system-x86_64 missing: scripts/setup --vm"),
    pytest.mark.skipif(not kernel_present("6.1"),
                       reason="kernel 6.1 not fetched: syncprobe vm fetch 6.1"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the initramfs build runs depmod as root"),
]


@pytest.fixture(scope="module")
def vm_run(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("vm") / "run"
    scratch = tmp_path_factory.mktemp("scratch")
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    proc = syncprobe("run", "--target", "vm:6.1:ext4", "--case", "seed-*", "--out", out,
                     "--no-progress", env=env, check=True, timeout=1500)
    return out, scratch, proc


def test_seed_single_writer_on_61(vm_run):
    out, _, _ = vm_run
    result, p = load_results(out, "vm:6.1:ext4", "seed-single-writer")
    assert result["status"] == "completed", result["reason"]
    env = result["environment"]
    assert env["kernel"].startswith("6.1."), env
    assert env["fs"] == "ext4"
    assert p["report.first"]["errno"] == "EIO"
    assert p["fate.read_cached"]["data"]["tag"] == "A"
    assert p["fate.read_after_drop"]["data"]["tag"] == "old"
    assert p["report.again"]["ret"] == 0
    assert p["single.disk"]["data"]["tag"] == "old"
    fault = next(o for o in result["steps"] if o["op"] == "fault")
    assert "flakey" in fault["detail"]["dm_table"] and "error_writes" in fault["detail"]["dm_table"]


def test_seed_two_process_on_61(vm_run):
    out, _, _ = vm_run
    result, p = load_results(out, "vm:6.1:ext4", "seed-two-process")
    assert result["status"] == "completed", result["reason"]
    fault = next(o for o in result["steps"] if o["op"] == "fault")
    assert "count_emulation" in fault["detail"], "dm has no counts: the emulation is recorded"
    assert p["cross.b_read"]["data"]["tag"] == "A"
    assert p["cross.b_fsync"]["ret"] == 0
    assert p["cross.disk"]["data"]["tag"] == "old"


def test_thin_pool_on_61(vm_run):
    out, _, _ = vm_run
    result, p = load_results(out, "vm:6.1:ext4", "seed-transient-recovery")
    assert result["status"] == "completed", result["reason"]
    thin = next(o for o in result["steps"] if o["op"] == "thin_limit")
    assert thin["detail"]["filler_blocks"] > 0
    assert p["recovery.first"]["ret"] == -1
    assert p["recovery.retry"]["ret"] == 0
    assert p["recovery.disk"]["data"]["tag"] != "A"


def test_console_kept_and_nothing_left(vm_run):
    out, scratch, _ = vm_run
    console = (pathlib.Path(out) / "vm:6.1:ext4" / "console.log").read_text()
    assert "syncprobe-init: kernel 6.1." in console
    assert leftovers(scratch) == []
    summary = json.loads((pathlib.Path(out) / "summary.json").read_text())
    assert summary["targets"]["vm:6.1:ext4"]["profile"]["cross_fd"] == "corrupts"


def test_vm_status(syncprobe):
    proc = syncprobe("vm", "status", check=True)
    assert "vm 6.1:" in proc.stdout
