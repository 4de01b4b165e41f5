"""KTAP output (report.ktap): checked against the grammar of the kernel's
KTAP specification and against the run's summary.json."""
import json
import os

import pytest

from ktap_grammar import KtapError, parse


@pytest.fixture(scope="module")
def ktap_run(syncprobe, tmp_path_factory):
    base = tmp_path_factory.mktemp("ktap")
    # A VM target with an empty kernel cache: its cases are skipped, with the reason.
    env = dict(os.environ, SYNCPROBE_CACHE=str(base / "empty-cache"))
    syncprobe("run", "--target", "reference:*", "--target", "vm:6.1:ext4", "--out", base / "run",
              "--no-progress", check=True, env=env)
    syncprobe("report", base / "run", "-o", base / "site", check=True)
    summary = json.loads((base / "run" / "summary.json").read_text())
    # Every run leaves KTAP and JUnit beside its summary, the same as the report's.
    for f in ("report.ktap", "junit.xml"):
        assert (base / "run" / f).read_text() == (base / "site" / f).read_text(), f
    return (base / "site" / "report.ktap").read_text(), summary


def test_written_beside_junit(ktap_run):
    text, _ = ktap_run
    assert text.startswith("KTAP version 1\n")
    assert "# SKIP target unavailable: kernel 6.1 not fetched" in text


def test_follows_the_grammar_and_the_summary(ktap_run):
    text, summary = ktap_run
    tests = parse(text)
    expected = [(t, c, v) for t, tj in summary["targets"].items() for c, v in tj["cases"].items()]
    assert len(tests) == len(expected)
    by_name = {t.name: t for t in tests}
    assert len(by_name) == len(tests)
    skipped = failed = checks = 0
    for target, case, v in expected:
        t = by_name[f"{target} {case}"]
        if v["status"] == "skipped":
            skipped += 1
            assert t.directive == "SKIP" and t.ok
            assert t.diagnostic == v["reason"].replace("#", "no.")
            assert t.subtests == []
            continue
        assert v["status"] == "completed", v
        assert t.ok == (v["checks_failed"] == 0), t
        judged = {(e["step"], e["rule"]) for ev in summary["targets"][target]["evidence"].values()
                  for e in ev if e.get("case") == case and "pass" in e}
        assert len(t.subtests) == len(judged)
        assert sum(not s.ok for s in t.subtests) == v["checks_failed"]
        assert sum(s.ok for s in t.subtests) == v["checks_passed"]
        for s in t.subtests:
            assert s.name.startswith("R") and " step " in s.name
            assert s.diagnostic.startswith("expected ")
        failed += not t.ok
        checks += len(t.subtests)
    # The run exercises every kind of line: skips, failures, nested checks.
    assert skipped > 0 and failed > 0 and checks > 100


def test_proposed_passes_everything(ktap_run):
    text, _ = ktap_run
    proposed = [t for t in parse(text) if t.name.startswith("reference:proposed ")]
    assert proposed and all(t.ok for t in proposed)


@pytest.mark.parametrize("bad, why", [
    ("1..1\nok 1 a\n", "version"),
    ("KTAP version 1\nok 1 a\n", "plan"),
    ("KTAP version 1\n1..2\nok 1 a\n", "plan 1..2"),
    ("KTAP version 1\n1..2\nok 1 a\nok 3 b\n", "number 3"),
    ("KTAP version 1\n1..1\nok 1 a # TIMEOUT 30 s\n", "TIMEOUT"),
    ("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  not ok 1 x\nok 1 a\n", "failed subtest"),
    ("KTAP version 1\n1..1\n   KTAP version 1\n   1..1\n   ok 1 x\nok 1 a\n", "indented"),
    ("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 x\n", "parent"),
    ("KTAP version 1\n1..1\nok 1 a\nwhatever\n", "not a KTAP line"),
])
def test_the_checker_rejects_what_the_spec_forbids(bad, why):
    with pytest.raises(KtapError, match=why):
        parse(bad)


def test_the_checker_accepts_the_specs_example():
    example = """KTAP version 1
1..1
  KTAP version 1
  1..3
    KTAP version 1
    1..1
    # test_1: initializing test_1
    ok 1 test_1
  ok 1 example_test_1
    KTAP version 1
    1..2
    ok 1 test_1 # SKIP test_1 skipped
    ok 2 test_2
  ok 2 example_test_2
    KTAP version 1
    1..3
    ok 1 test_1
    # test_2: FAIL
    not ok 2 test_2
    ok 3 test_3 # SKIP test_3 skipped
  not ok 3 example_test_3
not ok 1 main_test
"""
    (main,) = parse(example)
    assert not main.ok and [t.name for t in main.subtests] == ["example_test_1", "example_test_2", "example_test_3"]
    assert main.subtests[1].subtests[0].directive == "SKIP"
