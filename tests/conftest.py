"""Shared fixtures for the end-to-end tests: they run the built CLI."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("SYNCPROBE_BUILD", ROOT / "build"))


@pytest.fixture(scope="session")
def syncprobe():
    exe = BUILD / "runner" / "syncprobe"
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
