"""refmount:<policy> against reference:<policy>: the whole catalogue, once
through the kernel's VFS onto the FUSE-mounted reference and once in process,
compared step for step under every policy. The only differences allowed are
the cases refmount skips because FUSE does not carry a call to the mount
(docs/refmount.md); each is pinned here by the capability it lacks."""
import json
import pathlib

import pytest

from conftest import ROOT, leftovers
from test_mount import usable

pytestmark = pytest.mark.skipif(bool(usable()), reason=usable() or "usable")

# What FUSE cannot carry, as the target names it (targets/refmount).
FUSE_LACKS = {"sync_file_range", "syncfs", "mmap", "mmap-read", "raw-device", "fault:hang"}
# What each step must report the same on both; open's return is a descriptor
# number, which depends on the worker's other descriptors, so only its sign counts.
SAME = ("op", "proc", "errno", "hung", "injected", "fault_layer", "bytes", "data", "detail")


@pytest.fixture(scope="module")
def both(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("refmount") / "out"
    scratch = tmp_path_factory.mktemp("scratch")
    import os
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    p = syncprobe("run", "-t", "refmount:*", "-t", "reference:*", "--cases", ROOT / "cases", "-o", out,
                  "--no-progress", env=env, timeout=900)
    assert p.returncode == 0, p.stderr
    return out, scratch


def policies(out):
    return sorted(d.name.split(":", 1)[1] for d in pathlib.Path(out).iterdir() if d.name.startswith("refmount:"))


def test_every_policy_ran_on_both(both):
    out, _ = both
    assert len(policies(out)) == 9, policies(out)
    for policy in policies(out):
        assert (out / f"reference:{policy}").is_dir()


def test_results_match_step_for_step(both):
    out, _ = both
    compared = skipped = 0
    for policy in policies(out):
        for mounted in sorted((out / f"refmount:{policy}").glob("*.json")):
            a = json.loads((out / f"reference:{policy}" / mounted.name).read_text())
            b = json.loads(mounted.read_text())
            where = f"{policy} {mounted.stem}"
            if b["status"] == "skipped" and a["status"] != "skipped":
                lacked = b["reason"].split("target lacks capability: ", 1)[-1].split(" ", 1)[0]
                assert lacked in FUSE_LACKS, f"{where}: skipped for an unexplained reason: {b['reason']}"
                skipped += 1
                continue
            if a["status"] == "skipped" and "capability: app:" in a["reason"]:
                continue  # a real program: only the mount can run it (test_programs_run_on_the_mount)
            assert a["status"] == b["status"], f"{where}: {a['status']} in process, {b['status']} mounted: {b['reason']}"
            assert len(a["steps"]) == len(b["steps"]), where
            for x, y in zip(a["steps"], b["steps"]):
                at = f"{where} step {x['index']} ({x['op']}, line {x['line']})"
                for k in SAME:
                    assert x.get(k) == y.get(k), f"{at}: {k} {x.get(k)!r} in process, {y.get(k)!r} mounted"
                if x["op"] == "open":
                    assert (x["ret"] >= 0) == (y["ret"] >= 0), at
                else:
                    assert x["ret"] == y["ret"], f"{at}: ret {x['ret']} in process, {y['ret']} mounted"
            assert a["environment"].get("counters") == b["environment"].get("counters"), where
            compared += 1
    assert compared >= 9 * 30, f"only {compared} case results compared"
    assert skipped <= 9 * 11, f"{skipped} skips"


def test_the_per_descriptor_cases_are_among_those_compared(both):
    """R2-R5 need real descriptions in real processes: the cases that check
    them must run mounted, not be skipped."""
    out, _ = both
    for case in ("seed-two-process", "report-other-process-does-not-consume", "lifecycle-evict-then-open",
                 "power-cut-after-failed-fsync"):
        for policy in policies(out):
            assert json.loads((out / f"refmount:{policy}" / f"{case}.json").read_text())["status"] == "completed"


def test_programs_run_on_the_mount(both):
    """app steps run the real program with its file on the mount; sqlite in
    rollback mode works end to end (WAL needs a shared mapping: docs/refmount.md)."""
    import shutil
    out, _ = both
    if not shutil.which("sqlite3"):
        pytest.skip("sqlite3 not installed")
    r = json.loads((out / "refmount:proposed" / "app-sqlite-rollback-data-fault.json").read_text())
    assert r["status"] == "completed", r["reason"]
    init, put = r["steps"][0], r["steps"][1]
    assert init["op"] == put["op"] == "app" and init["ret"] == 0 and put["ret"] == 0, (init, put)
    assert "/mnt/" in init["detail"]["app"]["command"][-2] or any("/mnt/" in a for a in init["detail"]["app"]["command"])
    # What cannot run on the mount is skipped with the reason, never run
    # into an error: PostgreSQL (no file owners), SQLite WAL (shared mapping).
    for case, lacked in (("app-postgres-wal-fault-kept", "app:postgres (the mount has no file owners"),
                         ("app-sqlite-wal-data-fault", "mmap (a FUSE file opened for direct I/O")):
        r = json.loads((out / "refmount:proposed" / f"{case}.json").read_text())
        assert r["status"] == "skipped" and r["reason"].startswith("target lacks capability: " + lacked), (case, r)


def test_nothing_of_the_run_is_left(both):
    _, scratch = both
    assert leftovers(scratch) == []
    assert not [p for p in pathlib.Path(scratch).rglob("ctl-*")], "a control directory outlived its mount"
