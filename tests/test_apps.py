"""Application scenarios on host:ext4 (docs/apps.md): sqlite3 and qemu-io run
on the case's scratch filesystem while the FUSE device fails the writes of
their file. What is asserted is what the programs were measured to do on
this machine's kernel, and was reproduced by hand (docs/apps.md)."""
import json
import os
import pathlib
import shutil

import pytest

from conftest import leftovers, load_results

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="host targets need root"),
    pytest.mark.skipif(not pathlib.Path("/dev/fuse").exists(), reason="no /dev/fuse"),
    pytest.mark.skipif(not shutil.which("sqlite3"), reason="sqlite3 missing (scripts/setup)"),
    pytest.mark.skipif(not shutil.which("qemu-io"), reason="qemu-utils missing (scripts/setup)"),
]

TARGET = "host:ext4"


@pytest.fixture(scope="module")
def app_run(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("apps") / "run"
    scratch = tmp_path_factory.mktemp("scratch")
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    syncprobe("run", "--case", "app-*", "--target", TARGET, "--out", out, "--no-progress",
              check=True, env=env, timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["case"]: r for r in summary["applications"] if r["target"] == TARGET}
    return out, scratch, rows


def reads(row):
    return [(r.get("read"), r["outcome"]) for r in row["reads"]]


def test_programs_ran_on_the_scratch_filesystem_and_left_nothing(app_run):
    out, scratch, rows = app_run
    assert set(rows) == {"app-sqlite-rollback-data-fault", "app-sqlite-wal-data-fault",
                         "app-qemu-raw-writeback-flush-fault", "app-qemu-raw-none-flush-fault",
                         "app-qemu-qcow2-writeback-flush-fault"}
    for case in rows:
        result, _ = load_results(out, TARGET, case)
        assert result["status"] == "completed", result["reason"]
        for obs in result["steps"]:
            if obs["op"] == "app":
                if "command" not in obs["detail"]["app"]:
                    continue  # raw images have no check to run
                paths = [a for a in obs["detail"]["app"]["command"] if a.startswith("/")]
                assert paths and all(a.startswith(str(scratch) + "/") for a in paths), paths
    assert leftovers(scratch) == []


def test_sqlite_rollback_reports_and_rolls_back(app_run):
    out, _, rows = app_run
    row = rows["app-sqlite-rollback-data-fault"]
    assert row["fault_layer"] == "fuse-blockdev"
    _, p = load_results(out, TARGET, "app-sqlite-rollback-data-fault")
    put = p["app.faulted_put"]
    assert put["detail"]["app"]["acknowledged"] is False
    assert "disk I/O error" in put["detail"]["app"]["output"]
    assert put["injected"] >= 1
    # While the device fails, the hot journal cannot be rolled back: reads refuse.
    assert p["app.running"]["ret"] == -1
    assert row["detected"] == ["error to the client", "refusal to continue"]
    # After heal and a restart, the failed transaction is gone: the old value.
    assert reads(row) == [(None, "refused-while-faulty"), ("v1", "failed-absent")]
    assert row["outcomes"] == ["failed-absent"]


def test_sqlite_wal_commit_survives_a_failed_checkpoint(app_run):
    out, _, rows = app_run
    row = rows["app-sqlite-wal-data-fault"]
    _, p = load_results(out, TARGET, "app-sqlite-wal-data-fault")
    put = p["app.faulted_put"]
    # The commit only needed the WAL; the checkpoint's write to the database
    # file failed at close, and the client was not told: nothing was lost.
    assert put["detail"]["app"]["acknowledged"] is True
    assert put["injected"] >= 1
    assert row["detected"] == []
    assert reads(row) == [("v2", "acked-present"), ("v2", "acked-present")]


@pytest.mark.parametrize("case", ["app-qemu-raw-writeback-flush-fault",
                                  "app-qemu-qcow2-writeback-flush-fault"])
def test_qemu_writeback_failed_flush_is_a_false_failure_until_evicted(app_run, case):
    out, _, rows = app_run
    row = rows[case]
    _, p = load_results(out, TARGET, case)
    assert p["app.faulted_put"]["detail"]["app"]["acknowledged"] is False
    assert p["app.faulted_put"]["detail"]["app"]["exit_status"] == 1
    # The next write and flush after heal is acknowledged (a new process).
    assert p["app.retry_flush"]["detail"]["app"]["acknowledged"] is True
    # The host page cache still serves the write whose flush failed (FF);
    # once evicted, the disk's old value comes back.
    assert reads(row) == [("34", "FF"), ("17", "failed-absent"), ("51", "acked-present")]
    assert row["detected"] == ["error to the client"]


def test_qemu_cache_none_fails_the_write_itself(app_run):
    out, _, rows = app_run
    row = rows["app-qemu-raw-none-flush-fault"]
    _, p = load_results(out, TARGET, "app-qemu-raw-none-flush-fault")
    put = p["app.faulted_put"]["detail"]["app"]
    assert put["acknowledged"] is False
    assert "write failed" in put["output"]
    assert reads(row) == [("17", "failed-absent"), ("17", "failed-absent"), ("51", "acked-present")]


def test_report_shows_the_application_table(app_run, syncprobe, tmp_path):
    out, _, _ = app_run
    syncprobe("report", out, "--out", tmp_path / "rep", check=True)
    page = (tmp_path / "rep" / "index.html").read_text()
    table = page[page.index('id="apps"'):]
    table = table[:table.index("</table>")]
    assert "app-qemu-raw-writeback-flush-fault" in table
    assert "34 → FF" in table and "v1 → failed-absent" in table
    assert "fuse-blockdev" in table
