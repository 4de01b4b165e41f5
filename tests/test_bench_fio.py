"""scripts/bench-fio's judgement (issue 17's goal: the mounted reference at
>= 0.7x a bare FUSE passthrough's IOPS with < 2x its daemon CPU per
operation), on synthetic figures: no fio run and no timing here."""
import json
import subprocess

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "bench-fio"


def figures(tmp_path, ref_iops, ref_cpu, drop=None):
    by = {"tmpfs": {"iops": 600000.0},
          "passthrough": {"iops": 40000.0, "daemon_cpu_us_per_op": 5.0},
          "refmount:proposed": {"iops": ref_iops, "daemon_cpu_us_per_op": ref_cpu}}
    if drop:
        del by[drop]
    path = tmp_path / "fio.json"
    path.write_text(json.dumps({"schema": "syncprobe.bench-fio/1", "results": {"randwrite-fsync16": by}}))
    return subprocess.run([str(SCRIPT), "--judge", str(path)], capture_output=True, text=True, timeout=60)


def test_met_when_near_the_passthrough(tmp_path):
    p = figures(tmp_path, 36000.0, 6.0)
    assert p.returncode == 0, p.stdout
    assert "met    randwrite-fsync16  refmount:proposed         0.90x passthrough IOPS,  1.20x its CPU/op" in p.stdout


def test_missed_at_lazyfs_speed(tmp_path):
    p = figures(tmp_path, 5000.0, 6.0)
    assert p.returncode == 1 and "MISSED randwrite-fsync16  refmount:proposed         0.12x" in p.stdout


def test_missed_when_the_daemon_burns_cpu(tmp_path):
    p = figures(tmp_path, 39000.0, 10.0)
    assert p.returncode == 1 and "2.00x its CPU/op" in p.stdout and "MISSED" in p.stdout


def test_missing_passthrough_is_not_met(tmp_path):
    p = figures(tmp_path, 39000.0, 5.0, drop="passthrough")
    assert p.returncode == 1 and "MISSING" in p.stdout


def test_unreadable_input(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    p = subprocess.run([str(SCRIPT), "--judge", str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "not the output of scripts/bench-fio" in p.stderr
