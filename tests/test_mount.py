"""syncprobe mount and syncprobe fault, end to end: the reference mounted
through FUSE, driven by real system calls from this process and by unmodified
programs (sqlite3, git), faults sent from a second process. Every mount is
made in the test's own scratch directory and unmounted on the way out."""
import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD

EXE = BUILD / "bin" / "syncprobe"


def mounted(point):
    point = os.path.realpath(point)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == point for line in f)


def usable():
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        return "no /dev/fuse or fusermount3"
    if subprocess.run([str(EXE), "mount", "--help"], capture_output=True).returncode != 0:
        return "syncprobe built without libfuse3"
    return ""


pytestmark = pytest.mark.skipif(bool(usable()), reason=usable() or "usable")


def policies():
    p = subprocess.run([str(EXE), "list", "policies"], capture_output=True, text=True)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()] or ["proposed"]


POLICIES = policies()


class Mount:
    def __init__(self, tmp_path, policy, *extra):
        self.point = tmp_path / f"mnt-{policy.replace(':', '-')}"  # fio takes ':' as a list separator
        self.point.mkdir()
        self.log = tmp_path / f"mount-{policy}.log"
        self.proc = subprocess.Popen([str(EXE), "mount", "--policy", policy, *map(str, extra), str(self.point)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not mounted(self.point):
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"mount did not come up: {self.log.read_text()}")
            time.sleep(0.05)

    def path(self, name):
        return str(self.point / name)

    def fault(self, *args, check=True):
        p = subprocess.run([str(EXE), "fault", str(self.point), *map(str, args)], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"syncprobe fault {args}: {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def status(self):
        return json.loads(self.fault("status", "--json").stdout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if mounted(self.point):  # the daemon died: its mount must not outlive the test
            subprocess.run(["fusermount3", "-u", "-z", str(self.point)], capture_output=True)
        return self.proc.returncode


@pytest.fixture
def mount(tmp_path):
    mounts = []

    def make(policy, *extra):
        m = Mount(tmp_path, policy, *extra)
        mounts.append(m)
        return m

    yield make
    for m in mounts:
        m.stop()
        assert not mounted(m.point), f"{m.point} left mounted"
        assert m.proc.poll() is not None, f"the daemon of {m.point} outlived its mount"
        assert not daemons_serving(m.point)


def daemons_serving(point):
    """Processes whose command line names `point` (a syncprobe mount left behind)."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(point).encode() in cmd and any(c.endswith(b"syncprobe") for c in cmd[:1]):
                found.append(int(proc.name))
    return found


def fsync_errno(fd):
    try:
        os.fsync(fd)
        return 0
    except OSError as e:
        return e.errno


def test_files_and_directories_behave_as_a_filesystem(mount):
    m = mount("proposed")
    os.makedirs(m.path("a/b"))
    with open(m.path("a/b/f"), "wb") as f:
        f.write(b"x" * 10000)
        f.flush()
        os.fsync(f.fileno())
    assert sorted(os.listdir(m.path("a"))) == ["b"]
    assert os.stat(m.path("a/b/f")).st_size == 10000
    os.rename(m.path("a"), m.path("z"))
    with open(m.path("z/b/f"), "rb") as f:
        assert f.read() == b"x" * 10000
    os.truncate(m.path("z/b/f"), 100)
    assert os.path.getsize(m.path("z/b/f")) == 100
    with open(m.path("z/b/f"), "ab") as f:
        f.write(b"y")
    assert open(m.path("z/b/f"), "rb").read() == b"x" * 100 + b"y"
    os.chmod(m.path("z/b/f"), 0o600)
    assert os.stat(m.path("z/b/f")).st_mode & 0o777 == 0o600
    with pytest.raises(OSError) as e:
        os.rmdir(m.path("z"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(m.path("z/b/f"))
    os.rmdir(m.path("z/b"))
    dfd = os.open(m.path("z"), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)  # fsyncdir reaches the model's journal
    os.close(dfd)
    assert os.listdir(m.path("")) == ["z"]


@pytest.mark.parametrize("policy, second, after_heal", [
    # proposed keeps the failed page dirty: fsync fails until the device is
    # repaired, then the retry persists it.
    ("proposed", errno.EIO, 0),
    # Linux marks it clean: the error is reported once, then fsync succeeds.
    ("linux-4.17", 0, 0),
])
def test_a_fault_from_another_process_reaches_fsync(mount, policy, second, after_heal):
    m = mount(policy)
    fd = os.open(m.path("f"), os.O_RDWR | os.O_CREAT)
    os.pwrite(fd, b"a" * 4096, 0)
    os.fsync(fd)
    out = m.fault("--range", "f", "--errno", "EIO").stdout
    assert "layer reference" in out
    os.pwrite(fd, b"b" * 4096, 0)
    assert fsync_errno(fd) == errno.EIO
    assert fsync_errno(fd) == second
    st = m.status()
    assert st["injected_faults"] >= 1 and st["recent_faults"][-1]["layer"] == "reference"
    assert st["error_pages"] == 1, "the failed page is marked PG_error under both"
    m.fault("heal")
    assert fsync_errno(fd) == after_heal
    os.close(fd)
    log = m.log.read_text()
    assert '"layer":"reference"' in log and "injected" in log


def test_each_open_is_its_own_description(mount):
    """R4 through the VFS: a descriptor opened after the failure, which read
    and wrote nothing, is clean under proposed; linux-4.17 tells it of the
    unseen error instead."""
    results = {}
    for policy in ("proposed", "linux-4.17"):
        m = mount(policy)
        a = os.open(m.path("f"), os.O_RDWR | os.O_CREAT)
        m.fault("--range", "f")
        os.pwrite(a, b"a" * 4096, 0)
        m.fault("writeback")  # the failure happens in the background: nobody told yet
        c = os.open(m.path("f"), os.O_RDWR)
        results[policy] = (fsync_errno(c), fsync_errno(a))
        os.close(a)
        os.close(c)
    assert results["proposed"][0] == 0, "c touched nothing"
    assert results["linux-4.17"][0] == errno.EIO, "4.17: an unseen error goes to the next opener"
    assert results["proposed"][1] == errno.EIO, "a wrote the page that failed"


# Another process: opens FILE (at once, or when told), then fsyncs it when
# told and prints fsync's errno (0 when it succeeds).
HOLDER = """
import os, sys
def fsync_errno(fd):
    try:
        os.fsync(fd)
        return 0
    except OSError as e:
        return e.errno
if sys.argv[2] == "later":
    sys.stdin.readline()
fd = os.open(sys.argv[1], os.O_RDWR)
print("open", flush=True)
sys.stdin.readline()
print(fsync_errno(fd), flush=True)
"""


class Holder:
    def __init__(self, path, when):
        self.p = subprocess.Popen(["/usr/bin/python3", "-c", HOLDER, path, when], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        if when == "now":
            assert self.p.stdout.readline().strip() == "open"

    def tell(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def open(self):
        self.tell()
        assert self.p.stdout.readline().strip() == "open"

    def fsync(self):
        self.tell()
        return int(self.p.stdout.readline())

    def stop(self):
        self.p.kill()
        self.p.wait()


@pytest.mark.parametrize("policy, newcomer", [
    # proposed: a description opened after the failure, which wrote nothing, is clean (R4).
    ("proposed", 0),
    # linux-4.17: an error nobody has seen goes to the next description opened.
    ("linux-4.17", errno.EIO),
    # linux-4.13: the cursor is sampled at open, so a later opener never sees it.
    ("linux-4.13", 0),
])
def test_two_processes_each_see_their_own_error(mount, policy, newcomer):
    """Per-description reporting between real processes: this process writes
    the page that fails in background writeback; another process that had
    the file open before the failure, and a third that opens it after, fsync."""
    m = mount(policy)
    with open(m.path("f"), "wb") as f:
        f.write(b"0" * 4096)
    before, after = Holder(m.path("f"), "now"), Holder(m.path("f"), "later")
    try:
        fd = os.open(m.path("f"), os.O_RDWR)
        m.fault("--range", "f")
        os.pwrite(fd, b"w" * 4096, 0)
        m.fault("writeback")  # fails in the background: nobody has been told yet
        after.open()
        assert after.fsync() == newcomer
        assert before.fsync() == errno.EIO, "the error happened while it had the file open"
        assert fsync_errno(fd) == errno.EIO, "the writer is told under every policy"
        os.close(fd)
    finally:
        before.stop()
        after.stop()


@pytest.mark.parametrize("policy", POLICIES)
def test_fio_verifies_its_data_on_the_mount(mount, policy):
    if not shutil.which("fio"):
        pytest.skip("fio not installed (scripts/setup --bench)")
    m = mount(policy)
    p = subprocess.run(["fio", "--name=verify", f"--directory={m.point}", "--rw=randwrite", "--bs=4k", "--size=4m",
                        "--fsync=16", "--verify=crc32c", "--do_verify=1", "--ioengine=psync",
                        "--verify_state_save=0", "--output-format=json"],  # no state file in the cwd
                       capture_output=True, text=True, timeout=120, cwd=m.point.parent)
    assert p.returncode == 0, p.stderr
    job = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    assert job["error"] == 0 and job["write"]["total_ios"] == 1024 and job["read"]["total_ios"] == 1024
    assert m.status()["device_flushes"] >= 1024 // 16, "fio's fsyncs reached the model's device"


def test_power_cut_loses_what_was_not_flushed(mount):
    m = mount("proposed")
    with open(m.path("kept"), "wb") as f:
        f.write(b"k" * 4096)
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(m.path("kept"), os.O_RDWR)
    os.pwrite(fd, b"L" * 4096, 0)  # never fsynced
    m.fault("power-cut")
    with pytest.raises(OSError) as e:
        os.pwrite(fd, b"x", 0)
    assert e.value.errno == errno.EBADF, "the power took every description"
    os.close(fd)
    assert open(m.path("kept"), "rb").read() == b"k" * 4096


def test_size_limit_and_grow(mount):
    m = mount("proposed", "--size", "64k")
    fd = os.open(m.path("f"), os.O_RDWR | os.O_CREAT)
    os.pwrite(fd, b"z" * (128 * 1024), 0)  # cached: the cache does not know the device is full
    assert fsync_errno(fd) == errno.ENOSPC
    m.fault("grow", "--bytes", "1M")
    assert fsync_errno(fd) == 0, "proposed retries once the device grew (R6)"
    os.close(fd)
    assert m.status()["capacity_bytes"] > 1024 * 1024


def test_preallocated_memory_is_reserved_and_used(tmp_path, mount):
    m = mount("proposed", "--preallocate", "64M")
    reserved = m.status()["frame_bytes_reserved"]
    assert reserved >= 64 << 20
    with open(m.path("f"), "wb") as f:
        f.write(b"p" * (32 << 20))
        f.flush()
        os.fsync(f.fileno())
    assert m.status()["frame_bytes_reserved"] == reserved, "32 MiB written took memory beyond the 64 MiB touched"
    plain = mount("linux-4.17")
    assert plain.status()["frame_bytes_reserved"] < 64 << 20

    point = tmp_path / "too-much"
    point.mkdir()
    p = subprocess.run([str(EXE), "mount", "--policy", "proposed", "--preallocate", "1000000T", str(point)],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "--preallocate asks for more memory than this machine has" in p.stderr
    assert not mounted(point)


def test_mount_point_checks(tmp_path, mount):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    p = subprocess.run([str(EXE), "mount", "--policy", "proposed", str(full)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and "not empty" in p.stderr
    m = mount("proposed")
    p = subprocess.run([str(EXE), "mount", "--policy", "proposed", str(m.point)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and "already a mount point" in p.stderr
    p = subprocess.run([str(EXE), "mount", "--policy", "nosuch", str(tmp_path / "nope")], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    q = subprocess.run([str(EXE), "fault", str(tmp_path), "status"], capture_output=True, text=True, timeout=30)
    assert q.returncode == 1 and "not a syncprobe mount" in q.stderr
    q = subprocess.run([str(EXE), "fault", str(m.point), "--range", "f:x+1"], capture_output=True, text=True,
                       timeout=30)
    assert q.returncode == 2 and "FILE:OFFSET+LENGTH" in q.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "file-open"])
def test_a_signal_unmounts_and_removes_the_control_directory(mount, sig, busy):
    m = mount("linux-4.17")
    sock = m.status() and os.getxattr(str(m.point), "user.syncprobe.control").decode()
    assert os.path.exists(sock)
    assert oct(os.stat(os.path.dirname(sock)).st_mode & 0o777) == "0o700"
    fd = os.open(m.path("held"), os.O_CREAT | os.O_RDWR) if busy else None
    try:
        if busy:
            os.write(fd, b"x")
        m.proc.send_signal(sig)
        m.proc.wait(timeout=20)
        assert m.proc.returncode == 0, m.log.read_text()
        assert not mounted(m.point), "the daemon exited and left its mount"
        assert not os.path.exists(os.path.dirname(sock))
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def test_background_mode_returns_once_mounted(tmp_path):
    point = tmp_path / "bg"
    point.mkdir()
    p = subprocess.run([str(EXE), "mount", "--policy", "freebsd", "--background", str(point)],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    try:
        assert p.returncode == 0, p.stderr
        assert mounted(point)
        (point / "f").write_text("hello")
        assert (point / "f").read_text() == "hello"
    finally:
        subprocess.run(["fusermount3", "-u", str(point)], capture_output=True)
        deadline = time.time() + 10
        while (mounted(point) or daemons_serving(point)) and time.time() < deadline:
            time.sleep(0.05)
    assert not mounted(point)
    assert not daemons_serving(point), "the background daemon outlived its mount"


@pytest.mark.parametrize("policy", POLICIES)
def test_unmodified_programs_run_on_the_mount(mount, policy):
    m = mount(policy)
    if shutil.which("sqlite3"):
        db = m.path("app.db")
        sql = ("create table t(k integer primary key, v text);"
               "insert into t(v) values ('one'),('two'),('three');"
               "select count(*), group_concat(v) from t;")
        p = subprocess.run(["sqlite3", db, sql], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "3|one,two,three"
        p = subprocess.run(["sqlite3", db, "pragma integrity_check;"], capture_output=True, text=True, timeout=60)
        assert p.stdout.strip() == "ok"
    if shutil.which("git"):
        repo = m.path("repo")
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid", HOME=str(m.point))

        def git(*a):
            r = subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True, timeout=60, env=env)
            assert r.returncode == 0, f"git {a}: {r.stderr}"
            return r.stdout

        os.mkdir(repo)
        git("init", "-q")
        for i in range(20):
            with open(os.path.join(repo, f"file{i}.txt"), "w") as f:
                f.write(f"content {i}\n" * 100)
        git("add", ".")
        git("commit", "-q", "-m", "twenty files")
        git("fsck", "--full")  # exits non-zero on a corrupt object store
        assert "twenty files" in git("log", "--oneline")
        assert git("status", "--porcelain").strip() == ""
