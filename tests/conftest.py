"""Shared fixtures for the end-to-end tests: they run the built CLI."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("SYNCPROBE_BUILD", ROOT / "build"))


@pytest.fixture(scope="session")
def syncprobe():
    exe = BUILD / "bin" / "syncprobe"
    if not exe.exists():
        pytest.fail(f"{exe} not built: run scripts/build first")

    def run(*args, check=False, timeout=600, **kw):
        proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"syncprobe {' '.join(map(str, args))} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    return run


def load_results(out, target, case):
    """A case result, with each observation keyed by the probe its step carries."""
    import json
    run = json.loads((pathlib.Path(out) / "run.json").read_text())
    result = json.loads((pathlib.Path(out) / target / f"{case}.json").read_text())
    steps = run["cases"][case]["steps"]
    by_probe = {}
    for obs in result["steps"]:
        probe = steps[obs["index"]].get("probe")
        if probe:
            by_probe[probe] = obs
    return result, by_probe


def leftovers(scratch):
    """Mounts, loop devices and processes that live under `scratch`."""
    scratch = str(scratch)
    found = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(scratch + "/"):
            found.append(f"mount {point}")
    for loop in pathlib.Path("/sys/block").glob("loop*"):
        backing = loop / "loop" / "backing_file"
        if backing.exists() and backing.read_text().strip().startswith(scratch + "/"):
            found.append(f"loop /dev/{loop.name}")
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        mount_daemon = "syncprobe" in cmd and " mount " in cmd  # refmount's FUSE daemon
        workers = "syncprobe-worker" in cmd  # a case process's worker exec'd under libfiu
        if scratch + "/" in cmd and ("syncprobe-blockdev" in cmd or "qemu-system" in cmd or mount_daemon or workers):
            found.append(f"process {proc.name}: {cmd[:120]}")
    return found
