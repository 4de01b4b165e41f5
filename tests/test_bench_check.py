"""scripts/bench-check on synthetic Google Benchmark JSON: it passes a run that
meets every target and fails, naming the target, each way a run can miss one.
A test of the checker, not of any timing: no benchmark runs here."""
import copy
import json
import subprocess

import pytest

from conftest import ROOT

CHECK = ROOT / "scripts" / "bench-check"

# CPU ns per operation of a run that meets every target.
GOOD = {
    "BM_Memcpy/4096": 400.0,
    "BM_MemcpyOut/4096": 300.0,
    "BM_MemcpyBetween/4096": 600.0,
    "BM_TmpfsPwrite/4096": 1000.0,
}
for p in ("proposed", "linux-4.17"):
    GOOD.update({
        f"BM_ReferencePwrite/{p}/4096": 420.0,
        f"BM_ReferencePwrite/{p}/65536": 7000.0,
        f"BM_ReferencePreadHit/{p}/4096": 310.0,
        f"BM_ReferenceFsync/{p}/1": 500.0,
        f"BM_ReferenceFsync/{p}/100": 15000.0,
        f"BM_ReferenceFsync/{p}/10000": 7_000_000.0,
        f"BM_ReferenceFsyncOneDirty/{p}/10000": 520.0,
        f"BM_DropCaches/{p}/10000": 700_000.0,
    })
GOOD["BM_FailingFsync/proposed/100"] = 5000.0      # different work by design: not compared
GOOD["BM_FailingFsync/linux-4.17/100"] = 150.0
META = {"proposed": 25.4, "linux-4.17": 25.4}


def doc(times=GOOD, meta=META, repetitions=1, suffix=""):
    benchmarks = []
    for name, ns in times.items():
        for rep in range(repetitions):
            benchmarks.append({"name": name + suffix, "run_name": name + suffix, "run_type": "iteration",
                               "repetitions": repetitions, "repetition_index": rep, "iterations": 1000,
                               "real_time": ns * 3, "cpu_time": ns, "time_unit": "ns"})
    for p, b in meta.items():
        name = f"BM_CacheMetadata/{p}/iterations:1"
        benchmarks.append({"name": name, "run_name": name, "run_type": "iteration", "iterations": 1,
                           "real_time": 3e7, "cpu_time": 3e7, "time_unit": "ns", "bytes_per_page": b})
    return {"context": {"date": "synthetic"}, "benchmarks": benchmarks}


def check(tmp_path, d):
    f = tmp_path / "bench.json"
    f.write_text(json.dumps(d) if not isinstance(d, str) else d)
    return subprocess.run([str(CHECK), str(f)], capture_output=True, text=True, timeout=60)


def lines_with(out, status):
    return [l for l in out.splitlines() if l.startswith(status)]


def test_a_run_meeting_every_target_passes(tmp_path):
    proc = check(tmp_path, doc())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all targets met" in proc.stdout
    assert not lines_with(proc.stdout, "MISSED") and not lines_with(proc.stdout, "MISSING")
    # Every kind of target was judged, for both policies.
    for what in ("pwrite into cached pages vs memcpy (proposed)", "pread vs memcpy (linux-4.17)",
                 "metadata per cached page (proposed)", "1 dirty page among 10,000",
                 "10,000 dirty pages per page vs page copy", "BM_DropCaches/proposed/10000 vs linux-4.17"):
        assert any(what in l for l in lines_with(proc.stdout, "met")), what
    assert any("BM_FailingFsync" in l and "not compared" in l for l in lines_with(proc.stdout, "note"))


@pytest.mark.parametrize("change, missed", [
    ({"BM_ReferencePwrite/proposed/4096": 460.0}, "4 KiB pwrite into cached pages vs memcpy (proposed)"),
    ({"BM_ReferencePreadHit/linux-4.17/4096": 340.0}, "cached 4 KiB pread vs memcpy (linux-4.17)"),
    ({"BM_ReferenceFsyncOneDirty/linux-4.17/10000": 800.0}, "fsync of 1 dirty page among 10,000 cached"),
    ({"BM_ReferenceFsync/linux-4.17/10000": 9_500_000.0}, "fsync of 10,000 dirty pages per page"),
    ({"BM_DropCaches/proposed/10000": 850_000.0}, "BM_DropCaches/proposed/10000 vs linux-4.17"),
    ({"BM_ReferencePwrite/proposed/65536": 8500.0}, "BM_ReferencePwrite/proposed/65536 vs linux-4.17"),
])
def test_each_missed_target_fails_and_is_named(tmp_path, change, missed):
    times = dict(GOOD, **change)
    proc = check(tmp_path, doc(times))
    assert proc.returncode == 1, proc.stdout
    bad = lines_with(proc.stdout, "MISSED")
    assert len(bad) == 1 and missed in bad[0], bad
    assert "some targets MISSED" in proc.stdout


def test_metadata_over_32_bytes_fails(tmp_path):
    proc = check(tmp_path, doc(meta={"proposed": 33.0, "linux-4.17": 30.0}))
    assert proc.returncode == 1
    bad = lines_with(proc.stdout, "MISSED")
    assert any("cache metadata per cached page (proposed)" in l for l in bad), bad
    assert not any("(linux-4.17)" in l for l in bad)


def test_a_missing_benchmark_fails_as_missing(tmp_path):
    times = {k: v for k, v in GOOD.items() if k != "BM_MemcpyOut/4096"}
    proc = check(tmp_path, doc(times))
    assert proc.returncode == 1
    missing = lines_with(proc.stdout, "MISSING")
    assert missing and all("BM_MemcpyOut/4096" in l for l in missing), missing


def test_a_benchmark_that_errored_counts_as_missing(tmp_path):
    d = doc()
    for b in d["benchmarks"]:
        if b["name"] == "BM_Memcpy/4096":
            b["error_occurred"] = True
    proc = check(tmp_path, d)
    assert proc.returncode == 1
    assert any("BM_Memcpy/4096" in l for l in lines_with(proc.stdout, "MISSING"))


def test_repetitions_are_judged_by_their_median(tmp_path):
    # One slow outlier among five repetitions does not fail the run ...
    d = doc(repetitions=5)
    slow = [b for b in d["benchmarks"] if b["name"] == "BM_ReferencePwrite/proposed/4096"]
    slow[0]["cpu_time"] = 2000.0
    assert check(tmp_path, d).returncode == 0
    # ... three do.
    for b in slow[:3]:
        b["cpu_time"] = 2000.0
    proc = check(tmp_path, d)
    assert proc.returncode == 1
    # Google Benchmark's own median aggregate wins over the runs when present.
    d2 = copy.deepcopy(d)
    d2["benchmarks"].append({"name": "BM_ReferencePwrite/proposed/4096_median",
                             "run_name": "BM_ReferencePwrite/proposed/4096", "run_type": "aggregate",
                             "aggregate_name": "median", "iterations": 5, "real_time": 1260.0,
                             "cpu_time": 420.0, "time_unit": "ns"})
    assert check(tmp_path, d2).returncode == 0


def test_fixed_iteration_suffixes_and_time_units(tmp_path):
    d = doc(suffix="/iterations:100")
    for b in d["benchmarks"]:
        if b["run_type"] == "iteration" and "Metadata" not in b["name"]:
            b["cpu_time"] /= 1000.0
            b["time_unit"] = "us"
    proc = check(tmp_path, d)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("content", ["not json", json.dumps({"context": {}}), json.dumps([1, 2])])
def test_unreadable_input_exits_2(tmp_path, content):
    proc = check(tmp_path, content)
    assert proc.returncode == 2
    assert "bench.json" in proc.stderr and "--benchmark_out" in proc.stderr


def test_usage(tmp_path):
    assert subprocess.run([str(CHECK)], capture_output=True, timeout=60).returncode == 2
    proc = subprocess.run([str(CHECK), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Targets" in proc.stdout


def pair_entry(name, a_ns, b_ns, ratio):
    return {"name": name, "run_name": name, "run_type": "iteration", "iterations": 100,
            "real_time": 1e5, "cpu_time": 3e4, "time_unit": "ns",
            "a_ns": a_ns, "b_ns": b_ns, "b_over_a": ratio}


def test_an_interleaved_pair_judges_proposed_beside_linux(tmp_path):
    # Separately, proposed's pread looks 1.3x slower than linux-4.17's (a noisy moment) ...
    times = dict(GOOD, **{"BM_ReferencePreadHit/linux-4.17/4096": 240.0})
    d = doc(times)
    assert check(tmp_path, d).returncode == 1
    # ... but measured batch by batch beside linux-4.17 it is not: the pair decides.
    d["benchmarks"].append(pair_entry("BM_Pair/proposed-vs-linux-4.17/pread/4096", 310.0, 305.0, 0.98))
    proc = check(tmp_path, d)
    assert proc.returncode == 0, proc.stdout
    assert any("interleaved" in l and "BM_ReferencePreadHit/proposed/4096" in l
               for l in lines_with(proc.stdout, "met"))
    # And a pair that finds proposed 1.3x slower fails the run.
    d["benchmarks"][-1] = pair_entry("BM_Pair/proposed-vs-linux-4.17/pread/4096", 400.0, 308.0, 0.77)
    proc = check(tmp_path, d)
    assert proc.returncode == 1
    assert any("BM_ReferencePreadHit/proposed/4096 vs linux-4.17" in l for l in lines_with(proc.stdout, "MISSED"))


def test_pairs_against_memcpy_decide_the_memcpy_targets(tmp_path):
    # Separate loops say 0.80 (memcpy streamed alone at a quiet moment) ...
    d = doc(dict(GOOD, **{"BM_ReferencePwrite/proposed/4096": 500.0}))
    assert check(tmp_path, d).returncode == 1
    # ... the interleaved pair says 0.92: it decides, the separate ratio is a note.
    d["benchmarks"].append(pair_entry("BM_Pair/pwrite-vs-memcpy/proposed/4096", 470.0, 432.0, 0.92))
    d["benchmarks"].append(pair_entry("BM_Pair/proposed-vs-linux-4.17/pwrite/4096", 470.0, 468.0, 0.996))
    proc = check(tmp_path, d)
    assert proc.returncode == 0, proc.stdout
    assert any("pwrite into cached pages vs memcpy (proposed)" in l and "interleaved" in l
               for l in lines_with(proc.stdout, "met"))
    assert any("separate loops" in l and "0.800" in l for l in lines_with(proc.stdout, "note"))
    d["benchmarks"][-2] = pair_entry("BM_Pair/pwrite-vs-memcpy/proposed/4096", 500.0, 432.0, 0.86)
    proc = check(tmp_path, d)
    assert proc.returncode == 1
    assert any("pwrite into cached pages vs memcpy (proposed)" in l for l in lines_with(proc.stdout, "MISSED"))


def check_with_instructions(tmp_path, d, instructions):
    f, i = tmp_path / "bench.json", tmp_path / "instructions.json"
    f.write_text(json.dumps(d))
    i.write_text(json.dumps(instructions) if not isinstance(instructions, str) else instructions)
    return subprocess.run([str(CHECK), str(f), "--instructions", str(i)], capture_output=True, text=True,
                          timeout=60)


def test_instruction_counts_judge_proposed_beside_linux(tmp_path):
    # Timed in separate loops, proposed's drop_caches looks 1.3x slower (a noisy moment) ...
    times = dict(GOOD, **{"BM_DropCaches/proposed/10000": 910_000.0})
    assert check(tmp_path, doc(times)).returncode == 1
    # ... but it runs the same instructions: with the counts, that decides, and the time is a note.
    counts = {name: 1000 for name in GOOD if "/proposed/" in name or "/linux-4.17/" in name}
    proc = check_with_instructions(tmp_path, doc(times), counts)
    assert proc.returncode == 0, proc.stdout
    assert any("BM_DropCaches/proposed/10000 vs linux-4.17" in l and "callgrind" in l
               for l in lines_with(proc.stdout, "met"))
    assert any("BM_DropCaches/proposed/10000 vs linux-4.17" in l and "1.300" in l
               for l in lines_with(proc.stdout, "note"))
    # More instructions under proposed fail the run, however the times read.
    counts["BM_DropCaches/proposed/10000"] = 1300
    proc = check_with_instructions(tmp_path, doc(GOOD), counts)
    assert proc.returncode == 1
    assert any("BM_DropCaches/proposed/10000 vs linux-4.17" in l for l in lines_with(proc.stdout, "MISSED"))
    # The failing fsync does different work by design: its counts are not compared either.
    counts = {name: 1000 for name in counts} | {"BM_FailingFsync/proposed/100": 50_000}
    assert check_with_instructions(tmp_path, doc(GOOD), counts).returncode == 0


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"BM_x/proposed/1": -3}', '{"BM_x/proposed/1": "many"}'])
def test_an_unreadable_instructions_file_exits_2(tmp_path, content):
    proc = check_with_instructions(tmp_path, doc(GOOD), content)
    assert proc.returncode == 2
    assert "instructions.json" in proc.stderr
