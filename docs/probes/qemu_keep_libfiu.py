#!/usr/bin/python3
"""One qemu-io kept running under libfiu, by hand and sharing no code with
syncprobe: block 1 is written with FUA (write + flush), fiu-ctrl makes
fdatasync fail with EIO in the running process, a FUA write fails, fiu-ctrl
heals, and the same process writes and flushes again, then a new qemu-io does.
Checks docs/apps.md's kept-running QEMU rows (QEMU 7.2 refuses every flush
after a failed one until it is restarted). Needs qemu-utils and fiu-utils;
works in its own temporary directory (no root needed).
    docs/probes/qemu_keep_libfiu.py
"""
import os
import select
import subprocess
import tempfile
import time

with tempfile.TemporaryDirectory() as work:
    img, ctl = os.path.join(work, "img"), os.path.join(work, "fiu")
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", "-o", "preallocation=full", img, "4M"], check=True)

    def start():
        p = subprocess.Popen(["fiu-run", "-x", "-f", ctl, "qemu-io", "-f", "raw", "-t", "writeback", img],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        read(p)
        return p

    def read(p, until=b"qemu-io> "):
        out, end = b"", time.time() + 10
        while not out.endswith(until) and time.time() < end:
            if select.select([p.stdout], [], [], 0.2)[0]:
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
        return out.decode().replace("qemu-io> ", "").strip().splitlines()[:1]

    def cmd(p, c):
        p.stdin.write(c.encode() + b"\n")
        p.stdin.flush()
        print(f"  {c:28} -> {read(p)}")

    def ctrl(p, c):
        r = subprocess.run(["fiu-ctrl", "-f", ctl, "-c", c, str(p.pid)])
        print(f"  fiu-ctrl {c} -> exit {r.returncode}")

    print("qemu-io", subprocess.run(["qemu-io", "--version"], capture_output=True, text=True).stdout.split()[2])
    p = start()
    cmd(p, "write -f -P 17 4096 4096")
    ctrl(p, "enable name=posix/io/sync/fdatasync,failinfo=5")
    cmd(p, "write -f -P 34 4096 4096")
    ctrl(p, "disable name=posix/io/sync/fdatasync")
    cmd(p, "write -f -P 51 8192 4096")
    cmd(p, "flush")
    cmd(p, "read -v 4096 16")
    p.stdin.write(b"quit\n")
    p.stdin.flush()
    print("  quit -> exit", p.wait())
    print("a new qemu-io:")
    p = start()
    cmd(p, "write -f -P 68 12288 4096")
    cmd(p, "read -v 4096 16")
    p.stdin.write(b"quit\n")
    p.stdin.flush()
    p.wait()
