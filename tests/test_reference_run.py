"""End to end: the whole catalogue on the reference policies.

What the issue asks of the classifier, checked on a real run of the built CLI:
a distinct profile per policy (over every fault class); `proposed` passes R1-R7;
`linux-4.17` fails R1, R2, R3 and R6 and corrupts across descriptors; each
policy's closest policy is itself; every verdict names evidence that exists in
the results; the fstests verdicts follow the kernel history the models encode.
"""
import json
import pathlib

import pytest

POLICIES = ["linux-4.12", "linux-4.13", "linux-4.17", "linux-5.8:ext4", "linux-5.8:xfs",
            "openbsd", "freebsd", "illumos", "proposed"]
AXES = ["reporting", "page_fate", "recovery", "fs_reaction", "cross_fd"]
RULES = ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]


@pytest.fixture(scope="module")
def reference_run(syncprobe, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = syncprobe("run", "--target", "reference:*", "--out", out, "--jobs", 2, check=True)
    summary = json.loads((out / "summary.json").read_text())
    return out, summary, proc


def test_every_case_ran_on_every_policy(reference_run):
    out, summary, _ = reference_run
    run = json.loads((out / "run.json").read_text())
    assert len(run["cases"]) >= 24
    for policy in POLICIES:
        target = f"reference:{policy}"
        files = sorted(p.stem for p in (out / target).glob("*.json"))
        assert files == sorted(run["cases"]), target
        counts = summary["targets"][target]["counts"]
        # Only cases needing what the reference cannot model may be skipped.
        assert counts["error"] == 0 and counts["hung"] == 0, (target, counts)


def test_distinct_profiles(reference_run):
    _, summary, _ = reference_run
    profiles = {}
    for policy in POLICIES:
        t = summary["targets"][f"reference:{policy}"]
        profile = t["profile"]
        assert set(profile) >= set(AXES)
        for axis in AXES:
            assert profile[axis] not in ("unknown", "disagree"), (policy, axis, t["profile_reasons"])
        profiles[policy] = tuple((cls, a, p["axes"][a]["value"]) for cls, p in sorted(t["profiles"].items())
                                 for a in AXES)
    # illumos re-dirties and retries every failure as the proposal does: the
    # five axes cannot tell them apart; the rules can (R7: no bound).
    assert profiles["illumos"] == profiles["proposed"]
    rules = {p: summary["targets"][f"reference:{p}"]["rules"] for p in ("illumos", "proposed")}
    assert rules["illumos"] != rules["proposed"]
    others = [v for k, v in profiles.items() if k != "illumos"]
    assert len(set(others)) == len(others), profiles


def test_documented_profiles(reference_run):
    _, summary, _ = reference_run
    p = {pol: summary["targets"][f"reference:{pol}"]["profile"] for pol in POLICIES}
    assert p["linux-4.12"]["reporting"] == "first-caller"
    assert p["linux-4.13"]["reporting"] == "once-per-fd"
    assert p["linux-4.17"]["reporting"] == "once-per-fd+unseen"
    assert p["openbsd"]["reporting"] == "sticky-until-close"
    assert p["freebsd"]["reporting"] == "until-persisted"
    assert p["proposed"]["reporting"] == "until-persisted"
    assert p["linux-5.8:ext4"]["reporting"] == "once-per-fd+unseen"
    for linux in ("linux-4.12", "linux-4.13", "linux-4.17", "linux-5.8:ext4", "linux-5.8:xfs"):
        assert p[linux]["page_fate"] == "clean-kept"
        assert p[linux]["cross_fd"] == "corrupts"
        assert p[linux]["recovery"] == "lost-silent"
    # A failed journal commit: ext4 aborts the journal, xfs shuts down.
    assert p["linux-5.8:ext4"]["fs_reaction"] == "read-only"
    assert p["linux-5.8:xfs"]["fs_reaction"] == "shutdown"
    assert p["linux-4.17"]["fs_reaction"] == "continues"
    assert p["openbsd"]["page_fate"] == "reverted"
    assert p["freebsd"]["page_fate"] == "dirty-retained"
    assert p["proposed"]["page_fate"] == "dirty-retained"
    assert p["proposed"]["recovery"] == "recovers"
    assert p["freebsd"]["recovery"] == "recovers"  # a transient data-write error is retried
    # ENXIO is its own fault class: discarded, and UFS force-unmounts, so every
    # later fsync says so.
    enxio = summary["targets"]["reference:freebsd"]["profiles"]["device-gone"]["axes"]["recovery"]
    assert enxio["value"] == "lost-reported"
    # illumos re-dirties whatever the error: ENXIO is retried too.
    assert p["illumos"]["page_fate"] == "dirty-retained"
    assert p["illumos"]["recovery"] == "recovers"
    for pol in ("openbsd", "freebsd", "illumos", "proposed"):
        assert p[pol]["cross_fd"] == "safe"


def test_proposed_passes_every_rule(reference_run):
    _, summary, _ = reference_run
    rules = summary["targets"]["reference:proposed"]["rules"]
    assert rules == {r: "pass" for r in RULES}


def test_linux_417_fails_retain_consistency_gone_bad_recover(reference_run):
    _, summary, _ = reference_run
    t = summary["targets"]["reference:linux-4.17"]
    for rule in ("R1", "R2", "R3", "R6"):
        assert t["rules"][rule] == "fail", rule
    assert t["profile"]["cross_fd"] == "corrupts"


def test_closest_policy_is_itself(reference_run):
    _, summary, _ = reference_run
    for policy in POLICIES:
        t = summary["targets"][f"reference:{policy}"]
        assert t["closest_policy"] == policy
        assert t["closest_policies"] == [policy]
        assert t["distances"][policy]["differing"] == 0
        others = [d["differing"] for name, d in t["distances"].items() if name != policy]
        assert min(others) > 0, (policy, t["distances"])


def test_evidence_points_at_real_steps(reference_run):
    out, summary, _ = reference_run
    for target, t in summary["targets"].items():
        for key, entries in t["evidence"].items():
            for e in entries:
                result = json.loads((out / target / f"{e['case']}.json").read_text())
                steps = {s["index"]: s for s in result["steps"]}
                assert e["step"] in steps, (target, key, e)
                assert steps[e["step"]]["line"] == e["line"]
        # A failed rule names at least one failed check.
        for rule, verdict in t["rules"].items():
            if verdict == "fail":
                assert any(not e.get("pass", True) for e in t["evidence"][rule]), (target, rule)


def test_fstests_verdicts_follow_the_history_the_models_encode(reference_run):
    """generic/441 is the errseq test (4.13), 487 the unseen-error fix (after
    4.13, before 4.17 here), 484 the syncfs fix (5.8, after every Linux model);
    platforms that retry fail fstests' report-once condition."""
    _, summary, _ = reference_run
    verdict = {pol: {test: f["verdict"] for test, f in summary["targets"][f"reference:{pol}"]["fstests"].items()}
               for pol in POLICIES}
    assert verdict["linux-4.12"]["generic/441"] == "fail"
    assert verdict["linux-4.13"]["generic/441"] == "pass"
    assert verdict["linux-4.13"]["generic/487"] == "fail"
    assert verdict["linux-4.17"]["generic/487"] == "pass"
    for linux in ("linux-4.12", "linux-4.13", "linux-4.17"):
        assert verdict[linux]["generic/484"] == "fail"
    for pol in ("openbsd", "freebsd", "proposed"):
        assert verdict[pol]["generic/441"] == "fail"  # the second fsync must return 0 for fstests
    # Both are shown: linux-4.17 passes generic/441 and fails R2.
    t = summary["targets"]["reference:linux-4.17"]
    assert t["fstests"]["generic/441"]["verdict"] == "pass" and t["rules"]["R2"] == "fail"


def test_case_results_carry_errno_names_and_tags(reference_run):
    out, _, _ = reference_run
    result = json.loads((out / "reference:linux-4.17" / "seed-single-writer.json").read_text())
    assert result["schema"] == "syncprobe.case-result/1"
    assert result["environment"]["policy"] == "linux-4.17"
    by_probe = {}
    run = json.loads((out / "run.json").read_text())
    steps = run["cases"]["seed-single-writer"]["steps"]
    for obs in result["steps"]:
        probe = steps[obs["index"]].get("probe")
        if probe:
            by_probe[probe] = obs
    assert by_probe["report.first"]["errno"] == "EIO"
    assert by_probe["report.first"]["ret"] == -1
    assert by_probe["fate.read_cached"]["data"]["tag"] == "A"
    assert by_probe["fate.read_after_drop"]["data"]["tag"] == "old"
    assert by_probe["report.again"]["errno"] is None
    assert by_probe["single.disk"]["data"]["tag"] == "old"
    fault = next(o for o in result["steps"] if o["op"] == "fault")
    assert fault["detail"]["layer"] == "reference-device"


def test_summary_table_printed(reference_run):
    _, _, proc = reference_run
    assert "Profiles" in proc.stdout and "Rules" in proc.stdout
    for policy in POLICIES:
        assert f"reference:{policy}" in proc.stdout


def test_classify_reproduces_the_summary(syncprobe, reference_run):
    out, summary, _ = reference_run
    proc = syncprobe("classify", out, "--json", check=True)
    again = json.loads(proc.stdout)
    assert again["targets"] == summary["targets"]


def test_exit_codes(syncprobe, tmp_path):
    assert syncprobe("run", "--target", "nosuch:thing", "--out", tmp_path / "a").returncode == 2
    assert syncprobe("run", "--target", "reference:nosuch", "--out", tmp_path / "b").returncode == 2
    assert syncprobe("run", "--case", "no-such-case", "--target", "reference:proposed",
                     "--out", tmp_path / "c").returncode == 2
    assert syncprobe("classify", tmp_path / "does-not-exist").returncode == 2
    bad = tmp_path / "cases"
    bad.mkdir()
    (bad / "broken.toml").write_text('id = "broken"\ntitle = "x"\ndescription = "x"\n'
                                     'step = [ { op = "fsnyc", fd = "a" } ]\n')
    proc = syncprobe("run", "--cases", bad, "--target", "reference:proposed", "--out", tmp_path / "d")
    assert proc.returncode == 2
    assert "broken.toml:4" in proc.stderr
    assert not (tmp_path / "d" / "run.json").exists(), "nothing may run when a case is malformed"
