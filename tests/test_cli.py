"""The command line: --version, --help everywhere, list, exit codes, and every
malformed case in tests/malformed/ rejected with its precise message."""
import pathlib
import shutil

import pytest

MALFORMED = sorted((pathlib.Path(__file__).parent / "malformed").glob("*.toml"))
SUBCOMMANDS = ["list", "run", "classify", "report", "vm", "bench", "merge", "completion"]


def test_version(syncprobe):
    proc = syncprobe("--version", check=True)
    assert proc.stdout.startswith("syncprobe ")


@pytest.mark.parametrize("sub", [None] + SUBCOMMANDS)
def test_help(syncprobe, sub):
    args = ([sub] if sub else []) + ["--help"]
    proc = syncprobe(*args)
    assert proc.returncode == 0
    assert "Usage" in proc.stdout or "usage" in proc.stdout.lower()


def test_usage_errors_exit_2(syncprobe):
    assert syncprobe().returncode == 2
    assert syncprobe("frobnicate").returncode == 2
    assert syncprobe("list", "nothing").returncode == 2
    assert syncprobe("run", "--jobs", "zero").returncode == 2


def test_list_steps_shows_every_step(syncprobe):
    out = syncprobe("list", "steps", check=True).stdout
    for step in ["open", "close", "pwrite", "pread", "fsync", "fdatasync", "sync_file_range",
                 "msync", "syncfs", "sync", "drop_caches", "fault", "heal", "thin_limit", "grow",
                 "remount", "power_cut", "read_back"]:
        assert f"\n{step}" in "\n" + out, step
    assert "every step also takes" in out


def test_list_cases(syncprobe):
    out = syncprobe("list", "cases", check=True).stdout
    assert out.strip().endswith("cases in " + str(pathlib.Path(__file__).parent.parent / "cases"))
    count = int(out.strip().splitlines()[-1].split()[0])
    assert count >= 24
    for cid in ["seed-single-writer", "seed-two-process", "seed-transient-recovery",
                "fstests-generic-441", "fstests-generic-442", "fstests-generic-484",
                "fstests-generic-487", "fstests-generic-347"]:
        assert cid in out


def test_list_taxonomy_is_what_the_summary_uses(syncprobe, tmp_path):
    """The taxonomy is declared once: `list taxonomy` and summary.json name the same axes and classes."""
    out = syncprobe("list", "taxonomy", check=True).stdout
    run = tmp_path / "run"
    syncprobe("run", "--target", "reference:proposed", "--case", "seed-*", "--out", run, check=True)
    import json
    summary = json.loads((run / "summary.json").read_text())
    for axis in summary["axes"]:
        assert f"axis {axis} " in out
    for cls in summary["fault_classes"]:
        assert f"  {cls} " in out
    for rule, name in summary["rules"].items():
        assert f"{rule} {name}" in out
    assert "not measurable here" in out


def test_list_policies_and_targets(syncprobe):
    out = syncprobe("list", "policies", check=True).stdout
    for p in ["linux-4.12", "linux-4.13", "linux-4.17", "linux-5.8:ext4", "linux-5.8:xfs",
              "openbsd", "freebsd", "illumos", "proposed"]:
        assert p in out
    targets = syncprobe("list", "targets", check=True).stdout
    assert "reference:proposed" in targets and "modelled" in targets
    assert "vm:6.12:xfs" in targets


@pytest.mark.parametrize("case", MALFORMED, ids=[p.stem for p in MALFORMED])
def test_malformed_case_is_rejected_precisely(syncprobe, case, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(case, cases / case.name)
    out = tmp_path / "out"
    proc = syncprobe("run", "--cases", cases, "--target", "reference:proposed", "--out", out)
    assert proc.returncode == 2
    expected = [l[len("# expect: "):] for l in case.read_text().splitlines() if l.startswith("# expect: ")]
    assert expected, "each fixture states the message it must produce"
    for e in expected:
        assert str(cases) + "/" + e in proc.stderr, (e, proc.stderr)
    assert "hint:" in proc.stderr
    assert not (out / "run.json").exists(), "nothing runs while a case is malformed"


def test_all_bad_files_reported_together(syncprobe, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    for f in MALFORMED:
        shutil.copy(f, cases / f.name)
    proc = syncprobe("run", "--cases", cases, "--target", "reference:proposed", "--out", tmp_path / "o")
    assert proc.returncode == 2
    for f in MALFORMED:
        assert f.name + ":" in proc.stderr, f.name


def test_a_copied_case_is_rejected(syncprobe, tmp_path):
    # Ids must match file names, so a copy cannot silently shadow a case.
    cases = tmp_path / "cases"
    cases.mkdir()
    src = pathlib.Path(__file__).parent.parent / "cases" / "seed-single-writer.toml"
    shutil.copy(src, cases / "seed-single-writer.toml")
    (cases / "zz-copy.toml").write_text(src.read_text())
    proc = syncprobe("run", "--cases", cases, "--target", "reference:proposed", "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert "zz-copy.toml:1:6: error: case id 'seed-single-writer' differs from its file name" in proc.stderr


def test_every_capability_a_target_declares_is_in_the_data_file(syncprobe):
    proc = syncprobe("list", "capabilities")
    assert proc.returncode == 0, proc.stderr
    names = [l.split()[0] for l in proc.stdout.splitlines() if l and not l[0].isspace()]
    assert {"fault:data", "thin-pool", "power-cut", "second-process"} <= set(names)
