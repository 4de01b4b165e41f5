"""The libfiu contrast rows on host:ext4 (docs/apps.md, "libfiu on
syncprobe's own worker"): kernel cases whose calls libfiu fails in front of
the kernel, in the case process's own worker (exec'd under fiu-run -x). The
call returns the injected errno, yet the kernel's page cache never saw a
failure: the data is on disk, and the next call succeeds. The summary lists
these cases apart (layer libfiu) and no profile or rule verdict reads them:
classifying the same run without them gives the same profiles and rules."""
import json
import os
import pathlib
import shutil

import pytest

from conftest import leftovers, load_results

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="host targets need root"),
    pytest.mark.skipif(not pathlib.Path("/dev/fuse").exists(), reason="no /dev/fuse"),
    pytest.mark.skipif(not shutil.which("fiu-run") or not shutil.which("fiu-ctrl"),
                       reason="fiu-utils missing (scripts/setup)"),
]

TARGET = "host:ext4"
LIBFIU = {"libfiu-fsync-eio": "posix/io/sync/fsync", "libfiu-fdatasync-eio": "posix/io/sync/fdatasync",
          "libfiu-pwrite-eio": "posix/io/rw/pwrite"}
# The device-fault cases they contrast with, in the same run.
DEVICE = ["seed-single-writer", "sync-path-fdatasync", "sync-path-o-direct"]


@pytest.fixture(scope="module")
def fiu_run(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("libfiu") / "run"
    scratch = tmp_path_factory.mktemp("scratch")
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    args = ["run", "--target", TARGET, "--out", out, "--no-progress"]
    for c in [*LIBFIU, *DEVICE]:
        args += ["--case", c]
    syncprobe(*args, check=True, env=env, timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    return out, scratch, summary


def test_the_worker_ran_under_libfiu_and_left_nothing(fiu_run):
    out, scratch, _ = fiu_run
    for case, point in LIBFIU.items():
        result, _ = load_results(out, TARGET, case)
        assert result["status"] == "completed", result["reason"]
        assert result["environment"]["process_injector"] == "libfiu"
        fault = next(s for s in result["steps"] if s["op"] == "fault")
        assert fault["detail"]["layer"] == "libfiu"
        assert fault["detail"]["point"] == point
        assert fault["detail"]["errno"] == "EIO"
        assert fault["detail"]["once"] is True
        assert "onetime" in fault["detail"]["fiu_command"]
        # fiu-ctrl reached the one worker running then (process a).
        assert len(fault["detail"]["reached"]) == 1, fault["detail"]
        assert "fiu_ctrl_failed" not in fault["detail"]
    assert leftovers(scratch) == []


@pytest.mark.parametrize("case", ["libfiu-fsync-eio", "libfiu-fdatasync-eio"])
def test_a_sync_libfiu_fails_leaves_the_data_on_disk(fiu_run, case):
    out, _, _ = fiu_run
    result, p = load_results(out, TARGET, case)
    first = p["libfiu.first"]
    assert first["errno"] == "EIO" and first["ret"] == -1, first
    assert first["fault_layer"] == "libfiu" and first["injected"] == 1
    # One-shot, and the kernel never saw a failure: the next call writes the page.
    again = p["libfiu.again"]
    assert again["ret"] == 0 and again["errno"] is None, again
    assert again["fault_layer"] is None and again["injected"] == 0
    assert p["libfiu.read_cached"]["data"]["tag"] == "A"
    assert p["libfiu.read_after_drop"]["data"]["tag"] == "A"
    assert p["libfiu.disk"]["data"]["tag"] == "A"
    # No step of the case saw a device fault.
    assert all(s["fault_layer"] in (None, "libfiu") for s in result["steps"])


def test_a_pwrite_libfiu_fails_writes_nothing_and_the_retry_persists(fiu_run):
    out, _, _ = fiu_run
    result, p = load_results(out, TARGET, "libfiu-pwrite-eio")
    assert p["libfiu.write"]["errno"] == "EIO"
    assert p["libfiu.write"]["fault_layer"] == "libfiu"
    assert p["libfiu.read_failed"]["data"]["tag"] == "old"
    assert p["libfiu.fsync_after_failed"]["ret"] == 0
    assert p["libfiu.write_again"]["ret"] == 4096
    assert p["libfiu.again"]["ret"] == 0
    assert p["libfiu.read_after_drop"]["data"]["tag"] == "A"
    assert p["libfiu.disk"]["data"]["tag"] == "A"


def test_the_contrast_cases_are_listed_apart_and_decide_nothing(fiu_run, syncprobe, tmp_path):
    out, _, summary = fiu_run
    t = summary["targets"][TARGET]
    rows = {r["case"]: r for r in t["libfiu_contrast"]}
    assert set(rows) == set(LIBFIU)
    for case in LIBFIU:
        assert rows[case]["fault_layer"] == "libfiu"
        assert t["cases"][case]["fault_class"] == ""
        assert t["cases"][case]["fault_layer"] == "libfiu"
        assert t["cases"][case]["checks_passed"] == t["cases"][case]["checks_failed"] == 0
        for profile in t["profiles"].values():
            assert case not in profile["cases"]
        for evidence in t["evidence"].values():
            assert all(e.get("case") != case for e in evidence)
    first = next(s for s in rows["libfiu-fsync-eio"]["steps"] if s.get("probe") == "libfiu.first")
    assert first["observed"] == "-1 EIO" and first["fault_layer"] == "libfiu"
    for case in DEVICE:
        assert "fault_layer" not in t["cases"][case]
    # The same run classified without the libfiu cases: the same profiles and rules.
    without = tmp_path / "without"
    shutil.copytree(out, without)
    for case in LIBFIU:
        (without / TARGET / f"{case}.json").unlink()
    proc = syncprobe("classify", without, "--json", check=True)
    u = json.loads(proc.stdout)["targets"][TARGET]
    assert u["libfiu_contrast"] == []
    for key in ("profile", "profile_class", "profile_reasons", "profiles", "rules", "rule_reasons", "fstests",
                "evidence"):
        assert key in t and key in u, key
        assert t[key] == u[key], key


def test_a_worker_that_cannot_be_execd_is_a_harness_error_and_leaves_nothing(syncprobe, tmp_path):
    """The case ends as an error naming the harness, and the storage is torn
    down (once, the runner crashed on the worker it had failed to make)."""
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch), SYNCPROBE_WORKER=str(tmp_path / "no-such-worker"))
    proc = syncprobe("run", "--target", TARGET, "--case", "libfiu-fsync-eio", "--out", out, "--no-progress",
                     env=env, timeout=600)
    assert proc.returncode >= 0, f"the runner was killed by signal {-proc.returncode}"
    result, _ = load_results(out, TARGET, "libfiu-fsync-eio")
    assert result["status"] == "error"
    assert "harness: worker process" in result["reason"] and "before it served" in result["reason"], result["reason"]
    assert leftovers(scratch) == []
