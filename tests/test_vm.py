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


def test_report_links_the_console(syncprobe, vm_run, tmp_path):
    out, _, _ = vm_run
    syncprobe("report", out, "-o", tmp_path / "site", check=True)
    page = (tmp_path / "site" / "cases" / "vm_6.1_ext4" / "seed-single-writer.html").read_text()
    assert 'href="../../targets/vm_6.1_ext4-console.txt"' in page
    assert "syncprobe-init" in (tmp_path / "site" / "targets" / "vm_6.1_ext4-console.txt").read_text()


def test_vm_status(syncprobe):
    proc = syncprobe("vm", "status", check=True)
    assert "vm 6.1:" in proc.stdout


def _start(scratch, out):
    import subprocess
    from conftest import BUILD
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    return subprocess.Popen(
        [str(BUILD / "bin" / "syncprobe"), "run", "--target", "vm:6.1:ext4",
         "--case", "seed-*", "--out", str(out), "--no-progress"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)


def _wait_for_qemu(scratch, proc, timeout=300):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any("qemu-system" in x for x in leftovers(scratch)):
            return True
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended ({proc.returncode}) before QEMU started:\n{out.decode()}\n{err.decode()}")
        time.sleep(0.1)
    return False


def test_killed_vm_run_is_cleaned_up_by_the_next(syncprobe, tmp_path):
    import signal
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    victim = _start(scratch, tmp_path / "a")
    assert _wait_for_qemu(scratch, victim)
    os.killpg(victim.pid, signal.SIGKILL)  # QEMU runs in its own group: it survives
    victim.wait(timeout=30)
    assert any("qemu-system" in x for x in leftovers(scratch))
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    proc = syncprobe("run", "--target", "reference:proposed", "--case", "seed-single-writer",
                     "--out", tmp_path / "b", "--no-progress", env=env, check=True)
    assert "stale QEMU" in proc.stderr
    assert leftovers(scratch) == []
    assert not any(p.is_dir() for p in scratch.iterdir())


def test_interrupted_vm_run_stops_qemu(tmp_path):
    import signal
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = _start(scratch, tmp_path / "a")
    assert _wait_for_qemu(scratch, run)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert leftovers(scratch) == []
