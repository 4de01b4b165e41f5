"""syncprobe-blockdev on its own: the FUSE file, the control protocol, and
each fault kind, driven the way the host target drives it (root, /dev/fuse)."""
import errno
import json
import os
import pathlib
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD

EXE = BUILD / "libexec" / "syncprobe" / "syncprobe-blockdev"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="FUSE mounts need root here"),
    pytest.mark.skipif(not pathlib.Path("/dev/fuse").exists(), reason="no /dev/fuse"),
    pytest.mark.skipif(not EXE.exists(), reason="syncprobe-blockdev not built"),
]
SIZE = 16 << 20


class Daemon:
    def __init__(self, tmp):
        self.dir = tmp
        (tmp / "fuse").mkdir()
        self.name = f"@syncprobe-test-{os.getpid()}-{id(self)}"
        self.log = open(tmp / "log", "w")
        self.proc = subprocess.Popen(
            [str(EXE), "--image", str(tmp / "img"), "--size", str(SIZE), "--mountpoint",
             str(tmp / "fuse"), "--control", self.name, "--step-timeout-ms", "5000"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect("\0" + self.name[1:])
        self.file = self.sock.makefile("rw")
        self.dev = str(tmp / "fuse" / "dev")

    def cmd(self, **kw):
        self.file.write(json.dumps(kw) + "\n")
        self.file.flush()
        return json.loads(self.file.readline())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        subprocess.run(["umount", "-l", str(self.dir / "fuse")], capture_output=True)


@pytest.fixture
def dev(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.stop()


def image_at(d, off, n):
    with open(d.dir / "img", "rb") as f:
        f.seek(off)
        return f.read(n)


def test_reads_and_writes_reach_the_image(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    assert os.pwrite(fd, b"x" * 4096, 8192) == 4096
    assert os.pread(fd, 4096, 8192) == b"x" * 4096
    assert image_at(dev, 8192, 4096) == b"x" * 4096
    assert os.fstat(fd).st_size == SIZE
    os.close(fd)


def test_error_in_a_range_with_a_count(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    r = dev.cmd(cmd="fault", ranges=[[4096, 4096]], op="write", mode="error", errno="ENOSPC", count=1)
    assert r["ok"]
    assert os.pwrite(fd, b"a" * 4096, 0) == 4096, "outside the range"
    with pytest.raises(OSError) as e:
        os.pwrite(fd, b"b" * 4096, 4096)
    assert e.value.errno == errno.ENOSPC
    assert os.pwrite(fd, b"c" * 4096, 4096) == 4096, "count exhausted"
    assert dev.cmd(cmd="stats")["hits"] == 1
    os.close(fd)


def test_drop_acknowledges_and_discards(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    os.pwrite(fd, b"o" * 4096, 0)
    dev.cmd(cmd="fault", ranges=[], op="write", mode="drop")
    assert os.pwrite(fd, b"n" * 4096, 0) == 4096
    assert image_at(dev, 0, 4096) == b"o" * 4096
    dev.cmd(cmd="heal")
    os.close(fd)


def test_hang_until_heal(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    dev.cmd(cmd="fault", ranges=[], op="write", mode="hang")
    done = []
    t = threading.Thread(target=lambda: done.append(os.pwrite(fd, b"h" * 4096, 0)))
    t.start()
    time.sleep(0.5)
    assert not done, "the write is held"
    dev.cmd(cmd="heal")
    t.join(timeout=10)
    assert done == [4096]
    assert image_at(dev, 0, 4096) == b"h" * 4096
    os.close(fd)


def test_thin_pool_exhaustion_and_growth(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    os.pwrite(fd, b"a" * 4096, 0)
    r = dev.cmd(cmd="thin", headroom=0, when_full="error")
    assert r["ok"] and r["capacity_blocks"] == r["allocated_blocks"]
    assert os.pwrite(fd, b"b" * 4096, 0) == 4096, "rewriting an allocated block needs no space"
    with pytest.raises(OSError) as e:
        os.pwrite(fd, b"c" * 4096, 1 << 20)
    assert e.value.errno == errno.ENOSPC
    assert dev.cmd(cmd="grow", by=1 << 20)["ok"]
    assert os.pwrite(fd, b"c" * 4096, 1 << 20) == 4096
    os.close(fd)


def test_volatile_cache_and_power_cut(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    dev.cmd(cmd="cache", volatile=True)
    os.pwrite(fd, b"s" * 4096, 0)
    os.fsync(fd)  # the device's flush
    os.pwrite(fd, b"u" * 4096, 4096)
    assert os.pread(fd, 4096, 4096) == b"u" * 4096, "reads see the cache"
    assert dev.cmd(cmd="power_cut")["lost_blocks"] == 1
    assert image_at(dev, 0, 4096) == b"s" * 4096
    assert image_at(dev, 4096, 4096) == b"\0" * 4096
    # Without power the device answers nothing; back on, it has the image.
    for op in (lambda: os.pread(fd, 4096, 4096), lambda: os.pwrite(fd, b"v" * 4096, 0)):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == errno.EIO
    assert dev.cmd(cmd="power_on")["ok"]
    assert os.pread(fd, 4096, 4096) == b"\0" * 4096
    assert os.pread(fd, 4096, 0) == b"s" * 4096
    os.close(fd)


def test_power_cut_releases_held_requests(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    dev.cmd(cmd="fault", ranges=[], op="write", mode="hang")
    done = {}

    def writer():
        try:
            os.pwrite(fd, b"h" * 4096, 0)
            done["r"] = "ok"
        except OSError as e:
            done["r"] = e.errno

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.3)
    assert "r" not in done, "the write is held"
    assert dev.cmd(cmd="power_cut")["ok"]
    t.join(timeout=10)
    assert done.get("r") == errno.EIO, "a power cut ends what the device held"
    os.close(fd)


def test_release_makes_hangs_fail(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    assert dev.cmd(cmd="release")["ok"]
    dev.cmd(cmd="fault", ranges=[], op="write", mode="hang")
    with pytest.raises(OSError) as e:
        os.pwrite(fd, b"h" * 4096, 0)
    assert e.value.errno == errno.EIO
    os.close(fd)


def test_control_socket_refuses_other_users(dev):
    # The named socket (for manual use) answers only the daemon's own user.
    client = ("import socket,sys\n"
              "s=socket.socket(socket.AF_UNIX); s.settimeout(3)\n"
              "try:\n"
              "    s.connect('\\0'+sys.argv[1][1:]); s.sendall(b'{\"cmd\":\"heal\"}\\n')\n"
              "    print('reply', repr(s.recv(100)))\n"
              "except OSError as e:\n"
              "    print('refused', e)\n")
    attack = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "/usr/bin/python3", "-c", client, dev.name],
                            capture_output=True, text=True, timeout=30)
    # The client ran as the other user (not a setpriv or python failure) and
    # got a refusal, a closed connection or an error reply: never "ok".
    assert attack.returncode == 0, attack.stderr
    assert attack.stdout.startswith(("refused", "reply")), attack.stdout
    assert '"ok":true' not in attack.stdout.replace(" ", ""), attack.stdout
    assert dev.cmd(cmd="stats")["ok"], "the owner still can"


def test_flush_fault(dev):
    fd = os.open(dev.dev, os.O_RDWR)
    dev.cmd(cmd="fault", ranges=[], op="flush", mode="error", errno="EIO", count=1)
    os.pwrite(fd, b"x" * 4096, 0)
    with pytest.raises(OSError) as e:
        os.fsync(fd)
    assert e.value.errno == errno.EIO
    os.fsync(fd)
    os.close(fd)


def test_bad_requests_are_answered(dev):
    assert dev.cmd(cmd="frobnicate") == {"ok": False, "error": "unknown command 'frobnicate'"}
    assert not dev.cmd(cmd="fault", op="sideways")["ok"]
    assert not dev.cmd(cmd="grow", by=1)["ok"], "grow before thin"


def test_sigterm_unmounts(tmp_path):
    d = Daemon(tmp_path)
    d.proc.terminate()
    assert d.proc.wait(timeout=30) == 0
    mounts = pathlib.Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path / "fuse") not in mounts
