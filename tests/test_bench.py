"""Benchmarks run (smoke: minimal iterations) and report well-formed figures.
No timing assertions: the figures are measurements, not pass/fail."""
import json
import subprocess

import pytest

from conftest import BUILD, ROOT


def test_bench_smoke(syncprobe, tmp_path):
    out = tmp_path / "bench"
    proc = syncprobe("bench", "--smoke", "--target", "reference:proposed",
                     "--target", "reference:linux-4.17", "--out", out, check=True)
    bench = json.loads((out / "bench.json").read_text())
    assert bench["schema"] == "syncprobe.bench/1"
    assert set(bench["targets"]) == {"reference:proposed", "reference:linux-4.17"}
    for name, figs in bench["targets"].items():
        for key in ("fsync_healthy_ns", "fdatasync_healthy_ns", "fsync_failing_ns", "retry_after_heal_ns"):
            d = figs[key]
            assert d["n"] == 3, (name, key)
            assert d["min"] <= d["median"] <= d["p99"] <= d["max"], (name, key, d)
    pts = bench["error_memory"]["points"]
    cap = bench["error_memory"]["cap_bytes"]
    held = [p["error_bytes_held"] for p in pts]
    assert max(held) == cap, "the cap is reached"
    assert all(h <= cap for h in held)
    first_discard = next(i for i, p in enumerate(pts) if p["discarded"] > 0)
    assert held[:first_discard] == sorted(held[:first_discard]), "grows until the cap"
    assert held[first_discard - 1] == cap
    assert "fsync_healthy_ns" in proc.stdout


def test_bench_into_a_run_feeds_the_report(syncprobe, tmp_path):
    run = tmp_path / "run"
    syncprobe("run", "--target", "reference:proposed", "--case", "seed-*", "--out", run,
              "--no-progress", check=True)
    syncprobe("bench", "--smoke", "--target", "reference:proposed", "--out", run, check=True)
    bench = json.loads((run / "bench.json").read_text())
    assert bench["suite"]["targets"]["reference:proposed"]["cases"] == 3
    syncprobe("report", run, "-o", tmp_path / "site", check=True)
    page = (tmp_path / "site" / "index.html").read_text()
    assert 'id="bench"' in page and "fsync_failing_ns" in page


def test_bench_bad_target(syncprobe, tmp_path):
    assert syncprobe("bench", "--target", "nosuch:x", "--out", tmp_path).returncode == 2


def test_microbenchmarks_smoke(tmp_path):
    """The suite runs every benchmark the check needs (names agree); the
    figures of so short a run are not judged here."""
    exe = BUILD / "bench" / "syncprobe_microbench"
    if not exe.exists():
        pytest.skip("built without SYNCPROBE_BUILD_BENCH")
    out = tmp_path / "micro.json"
    proc = subprocess.run([str(exe), "--benchmark_min_time=0.001", f"--benchmark_out={out}",
                           "--benchmark_out_format=json"], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    names = {b["run_name"] for b in json.loads(out.read_text())["benchmarks"]}
    for family in ("BM_ReferencePwrite/proposed/4096", "BM_Memcpy/4096", "BM_TmpfsFsync/10000",
                   "BM_CacheMetadata/linux-4.17"):
        assert any(n.startswith(family) for n in names), family
    check = subprocess.run([str(ROOT / "scripts" / "bench-check"), str(out)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode in (0, 1), check.stdout + check.stderr
    assert "MISSING" not in check.stdout, check.stdout
