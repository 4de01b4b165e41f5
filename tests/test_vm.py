"""VM targets: the oldest and the newest series of data/kernels.toml booted
under QEMU (TCG here), side by side, with faults from the FUSE block device
inside the guest; a kernel added with `vm add`; the across-kernels page.
scripts/test fetches both series first; without them the boot tests are
skipped with the command that fixes it."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, leftovers, load_results

CACHE = pathlib.Path(os.environ.get("SYNCPROBE_CACHE")
                     or pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "syncprobe")
KERNELS = CACHE / "vm" / "kernels"
OLDEST, NEWEST = "5.10", "7.3"


def kernel(name):
    try:
        return json.loads((KERNELS / name / "kernel.json").read_text())
    except OSError:
        return None


needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 missing: scripts/setup --vm")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the initramfs build runs depmod as root")
needs_kernels = pytest.mark.skipif(not (kernel(OLDEST) and kernel(NEWEST)),
                                   reason=f"kernels not fetched: syncprobe vm fetch {OLDEST} {NEWEST}")

CASES = ["seed-single-writer", "seed-two-process", "seed-transient-recovery",
         "fstests-generic-441", "device-flush-failure"]


@pytest.fixture(scope="module")
def vm_run(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("vm") / "run"
    scratch = tmp_path_factory.mktemp("scratch")
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    # 6.19 has no modules package in Debian: unavailable, so it must not
    # become a column of the across-kernels page.
    args = ["run", "--target", f"vm:{OLDEST}:ext4", "--target", f"vm:{NEWEST}:ext4", "--target", "vm:6.19:ext4",
            "--vm-jobs", "2", "--out", out, "--no-progress"]
    for c in CASES:
        args += ["--case", c]
    proc = syncprobe(*args, env=env, check=True, timeout=1500)
    return out, scratch, proc


@needs_qemu
@needs_root
@needs_kernels
@pytest.mark.parametrize("series", [OLDEST, NEWEST])
def test_data_fault_fails_only_the_data(vm_run, series):
    """The FUSE device fails the file's data writes and nothing else: a
    descriptor opened after the error was reported gets 0 from fsync on every
    kernel, as on the host (with dm-flakey it got EIO: the flush failed)."""
    out, _, _ = vm_run
    target = f"vm:{series}:ext4"
    result, p = load_results(out, target, "seed-single-writer")
    assert result["status"] == "completed", result["reason"]
    env = result["environment"]
    assert env["kernel"].startswith(series + "."), env
    assert env["injector"] == "fuse-blockdev" and "loop" in env["device"]
    assert p["report.first"]["errno"] == "EIO" and p["report.first"]["fault_layer"] == "fuse-blockdev"
    fault = next(o for o in result["steps"] if o["op"] == "fault")
    assert fault["detail"]["io"] == "write" and fault["detail"]["ranges"], fault["detail"]
    assert p["single.disk"]["data"]["tag"] == "old"
    result, p = load_results(out, target, "fstests-generic-441")
    assert result["status"] == "completed", result["reason"]
    assert p["report.new_fd"]["ret"] == 0, p["report.new_fd"]


@needs_qemu
@needs_root
@needs_kernels
@pytest.mark.parametrize("series", [OLDEST, NEWEST])
def test_flush_failure_is_its_own_fault(vm_run, series):
    out, _, _ = vm_run
    result, p = load_results(out, f"vm:{series}:ext4", "device-flush-failure")
    assert result["status"] == "completed", result["reason"]
    fault = next(o for o in result["steps"] if o["op"] == "fault")
    assert fault["detail"]["io"] == "flush"
    assert p["flush.fsync"]["errno"] == "EIO" and p["flush.fsync"]["fault_layer"] == "fuse-blockdev"


@needs_qemu
@needs_root
@needs_kernels
def test_thin_pool_still_on_dm_and_guests_ran_side_by_side(vm_run):
    out, scratch, _ = vm_run
    for series in (OLDEST, NEWEST):
        result, p = load_results(out, f"vm:{series}:ext4", "seed-transient-recovery")
        assert result["status"] == "completed", result["reason"]
        assert "dm-thin" in result["environment"]["injector"]
        assert p["recovery.first"]["ret"] == -1 and p["recovery.retry"]["ret"] == 0
    # One boot per kernel, both at once (--vm-jobs 2): the spans of the two
    # guests' results overlap. Run one after the other, the second guest's
    # first result would come a whole boot after the first guest's last.
    spans = []
    for series in (OLDEST, NEWEST):
        stamps = sorted(json.loads((pathlib.Path(out) / f"vm:{series}:ext4" / f"{c}.json").read_text())["started_at"]
                        for c in CASES)
        spans.append((stamps[0], stamps[-1]))
    (a0, a1), (b0, b1) = spans
    assert a0 <= b1 and b0 <= a1, spans
    assert leftovers(scratch) == []
    for series in (OLDEST, NEWEST):
        console = (pathlib.Path(out) / f"vm:{series}:ext4" / "console.log").read_text()
        assert f"syncprobe-init: kernel {series}." in console


@needs_qemu
@needs_root
@needs_kernels
def test_across_kernels_page(syncprobe, vm_run, tmp_path):
    out, _, _ = vm_run
    site = tmp_path / "site"
    syncprobe("report", out, "-o", site, check=True)
    page = (site / "kernels.html").read_text()
    assert 'href="kernels.html"' in (site / "index.html").read_text()
    old, new = kernel(OLDEST)["release"], kernel(NEWEST)["release"]
    assert page.index(old) < page.index(new), "oldest kernel first"
    assert 'id="fs-ext4"' in page
    if kernel("6.19") is None:
        assert "vm:6.19:ext4" not in page, "a kernel that ran nothing is no column"
        assert page.count("<th scope=\"col\"><a href=\"targets/") == 2
    # Every link resolves (anchors too); nothing remote.
    for href in re.findall(r'href="([^"]+)"', page):
        assert not re.match(r"^[a-z]+://", href), href
        target, _, anchor = href.partition("#")
        dest = site / target if target else site / "kernels.html"
        assert dest.exists(), href
        if anchor:
            assert f'id="{anchor}"' in dest.read_text(), href
    assert "<script" not in page and "url(" not in page
    chromium = shutil.which("chromium")
    if chromium:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run([chromium, *flags, "--dump-dom", (site / "kernels.html").as_uri()],
                             check=True, capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL).stdout
        assert "Across kernels" in dom and dom.count("<table") >= 1
        assert old in dom and new in dom


def _fake_kernel_tree(root, release, config_lines):
    """Unpacked package files standing in for a build: a vmlinuz, a config
    and a modules tree whose modules.builtin lists what the config says."""
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"not a kernel")
    (root / "boot" / f"config-{release}").write_text("\n".join(config_lines) + "\n")
    mods = root / "lib" / "modules" / release
    mods.mkdir(parents=True)
    (mods / "modules.builtin").write_text("")
    (mods / "modules.order").write_text("")


ALL_OPTIONS = ["CONFIG_VIRTIO_PCI=y", "CONFIG_VIRTIO_BLK=y", "CONFIG_BLK_DEV_LOOP=y", "CONFIG_FUSE_FS=y",
               "CONFIG_BLK_DEV_DM=y", "CONFIG_DM_FLAKEY=y", "CONFIG_DM_THIN_PROVISIONING=y",
               "CONFIG_EXT4_FS=y", "CONFIG_XFS_FS=y", "CONFIG_BTRFS_FS=y", "CONFIG_CRYPTO_CRC32C=y"]


@pytest.mark.skipif(shutil.which("depmod") is None, reason="depmod missing: scripts/setup")
def test_vm_add_names_missing_options_and_adds_nothing(syncprobe, tmp_path):
    env = dict(os.environ, SYNCPROBE_CACHE=str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    options = [o for o in ALL_OPTIONS if not o.startswith(("CONFIG_FUSE_FS", "CONFIG_XFS_FS"))]
    _fake_kernel_tree(tree, "6.99.0-test", options + ["# CONFIG_FUSE_FS is not set"])
    proc = syncprobe("vm", "add", "mine", "--kernel", tree / "boot" / "vmlinuz-6.99.0-test",
                     "--modules", tree, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "lacks CONFIG_FUSE_FS (faults through the FUSE block device)" in proc.stderr
    assert "lacks CONFIG_XFS_FS (xfs targets)" in proc.stderr
    assert not (tmp_path / "cache" / "vm" / "kernels" / "mine").exists()
    # A name the catalogue uses is refused, with a way out.
    proc = syncprobe("vm", "add", "6.1", "--kernel", tree / "boot" / "vmlinuz-6.99.0-test",
                     "--modules", tree, env=env)
    assert proc.returncode == 2 and "choose another name" in proc.stderr


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb missing")
def test_vm_add_from_deb_makes_targets_and_missing_fs_is_unavailable(syncprobe, tmp_path):
    env = dict(os.environ, SYNCPROBE_CACHE=str(tmp_path / "cache"))
    tree = tmp_path / "pkg"
    _fake_kernel_tree(tree, "6.99.1-test", [o for o in ALL_OPTIONS if not o.startswith("CONFIG_BTRFS_FS")])
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        "Package: linux-image-test\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@example.org>\n"
        "Description: test kernel\n")
    deb = tmp_path / "linux-image-test.deb"
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(tree), str(deb)], check=True,
                   capture_output=True)
    proc = syncprobe("vm", "add", "patched", "--deb", deb, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "lacks CONFIG_BTRFS_FS (btrfs targets)" in proc.stderr
    manifest = json.loads((tmp_path / "cache" / "vm" / "kernels" / "patched" / "kernel.json").read_text())
    assert manifest["release"] == "6.99.1-test" and manifest["source"] == "added"
    targets = syncprobe("list", "targets", env=env, check=True).stdout
    assert "vm:patched:ext4" in targets
    line = next(l for l in targets.splitlines() if "vm:patched:btrfs" in l)
    assert "CONFIG_BTRFS_FS" in line, line


@needs_qemu
@needs_root
@needs_kernels
def test_vm_add_from_unpacked_package_files_runs(syncprobe, tmp_path):
    """The oldest series' unpacked files stand in for a self-built kernel:
    vm add with --kernel, --modules and --config, then a run on it."""
    k = kernel(OLDEST)
    root = KERNELS / OLDEST
    env = dict(os.environ, SYNCPROBE_CACHE=str(tmp_path / "cache"), SYNCPROBE_SCRATCH=str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    # The unpacked root holds lib/modules/<release>, as an INSTALL_MOD_PATH does.
    proc = syncprobe("vm", "add", "mine", "--kernel", root / k["vmlinuz"], "--modules", root / "root",
                     "--config", root / k["config"], env=env, check=True)
    assert "kernel " + k["release"] in proc.stdout
    out = tmp_path / "run"
    syncprobe("run", "--target", "vm:mine:ext4", "--case", "seed-single-writer", "--out", out,
              "--no-progress", env=env, check=True, timeout=900)
    result, p = load_results(out, "vm:mine:ext4", "seed-single-writer")
    assert result["status"] == "completed", result["reason"]
    assert result["environment"]["kernel"] == k["release"]
    assert result["environment"]["kernel_source"] == "added"
    assert p["report.first"]["errno"] == "EIO"


def test_vm_list_names_every_series(syncprobe):
    proc = syncprobe("vm", "list", timeout=900)
    if proc.returncode != 0:
        pytest.skip("package lists unavailable: " + proc.stderr.strip()[:200])
    suites = "bullseye|bookworm|trixie|trixie-backports|sid"
    for series in ("5.10", "6.1", "6.12", "6.16", "6.17", "6.18", "7.2", "7.3"):
        # The series, whether it is fetched, and the package of that series
        # Debian has today: its name carries the series' version, then the
        # package version and the suite it comes from.
        line = re.search(rf"^{re.escape(series)}\s.*$", proc.stdout, re.M)
        assert line, series
        assert re.search(rf"\slinux-\S*-{re.escape(series)}\.\d+\S*-amd64\S* {re.escape(series)}\.\d+\S* "
                         rf"\(({suites})\)$", line.group(0)), line.group(0)
    for series in ("6.19", "7.0", "7.1"):
        line = next(l for l in proc.stdout.splitlines() if l.startswith(series + " "))
        assert "no linux-modules" in line, line


def _start(scratch, out):
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    return subprocess.Popen(
        [str(BUILD / "bin" / "syncprobe"), "run", "--target", f"vm:{OLDEST}:ext4",
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


@needs_qemu
@needs_root
@needs_kernels
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
    assert "cleaned up after killed run" in proc.stderr and "qemu-system-x86_64" in proc.stderr, proc.stderr
    assert leftovers(scratch) == []
    assert not any(p.is_dir() for p in scratch.iterdir())


@needs_qemu
@needs_root
@needs_kernels
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


HANG_CASE = '''id = "a-hang"
title = "a write that never completes, in a guest"
description = "The device holds the file's writes until healed; fsync cannot return."
step = [
  { op = "open", fd = "a" },
  { op = "pwrite", fd = "a", len = "8K", tag = "old" },
  { op = "fsync", fd = "a" },
  { op = "fault", range = "data", io = "write", mode = "hang" },
  { op = "pwrite", fd = "a", off = 0, len = "4K", tag = "A" },
  { op = "fsync", fd = "a", probe = "hang.fsync" },
  { op = "heal" },
]
'''


@needs_qemu
@needs_root
@needs_kernels
def test_a_hung_case_in_a_guest_costs_only_that_case(syncprobe, tmp_path):
    """docs/safety.md section 6: the guest ends a hung step at its timeout
    (--step-timeout as given, below the guests' 20 s default), releases the
    device and goes on; the next case of the same boot runs."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "a-hang.toml").write_text(HANG_CASE)
    shutil.copy(ROOT / "cases" / "seed-single-writer.toml", cases)
    scratch = tmp_path / "scratch"
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    target = f"vm:{OLDEST}:ext4"
    syncprobe("run", "--cases", cases, "--target", target, "--step-timeout", 2000,
              "--out", tmp_path / "out", "--no-progress", env=env, check=True, timeout=1500)
    hung, _ = load_results(tmp_path / "out", target, "a-hang")
    assert hung["status"] == "hung", hung["reason"]
    assert hung["steps"][-1]["op"] == "fsync" and hung["steps"][-1]["hung"] is True
    # The guest's own clock: the step ended at the 2 s it was given, not at 20 s.
    assert hung["steps"][-1]["duration_ns"] < 10e9, hung["steps"][-1]
    after, p = load_results(tmp_path / "out", target, "seed-single-writer")
    assert after["status"] == "completed", after["reason"]
    assert p["single.disk"]["data"]["tag"] == "old"
    assert leftovers(scratch) == []
