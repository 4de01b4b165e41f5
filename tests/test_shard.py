"""Sharded runs: `syncprobe run --shard K/N` on GNU parallel, combined with
`syncprobe merge`, classify and report exactly as the unsharded run; merge
refuses what is not one run."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD

PARALLEL = shutil.which("parallel")
needs_parallel = pytest.mark.skipif(PARALLEL is None, reason="GNU parallel missing: scripts/setup installs it")
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not pathlib.Path("/dev/fuse").exists(),
                                reason="host targets need root and /dev/fuse")
EXE = BUILD / "bin" / "syncprobe"


def comparable(summary):
    """The summary without what differs between any two runs: the run's id and
    times, and the per-case kernel and injector logs the environment carries."""
    s = json.loads(json.dumps(summary))
    del s["run"]
    for t in s["targets"].values():
        for k in ("kernel_log", "injector_log", "counters"):
            t["environment"].pop(k, None)
    return s


def sharded(tmp, n, jobs, *run_args, env=None):
    """Runs N shards with GNU parallel (JOBS at a time) and merges them."""
    cmd = [PARALLEL, "--will-cite", "--halt", "now,fail=1", "--jobs", str(jobs),
           str(EXE), "run", *run_args, "--no-progress", "--shard", "{}/" + str(n), "--out", str(tmp / "shard-{}"),
           ":::", *map(str, range(1, n + 1))]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800, env=env,
                   stdin=subprocess.DEVNULL)
    shards = [tmp / f"shard-{k}" for k in range(1, n + 1)]
    return shards


@pytest.fixture(scope="module")
def reference_runs(syncprobe, tmp_path_factory):
    base = tmp_path_factory.mktemp("shard-ref")
    syncprobe("run", "--target", "reference:*", "--out", base / "whole", "--no-progress", check=True)
    return base


def test_shards_split_the_plan(syncprobe, tmp_path):
    counts = []
    for k in (1, 2, 3):
        proc = syncprobe("run", "--target", "reference:*", "--shard", f"{k}/3", "--out", tmp_path / str(k),
                         "--no-progress", check=True)
        assert f"shard {k}/3" in proc.stdout
        run = json.loads((tmp_path / str(k) / "run.json").read_text())
        assert run["shard"]["index"] == k and run["shard"]["count"] == 3
        files = {p.relative_to(tmp_path / str(k)) for p in (tmp_path / str(k)).glob("*/*.json")}
        assert len(files) == run["shard"]["case_runs"]
        counts.append(files)
        # A shard's results are classified only once merged.
        assert not (tmp_path / str(k) / "summary.json").exists()
    assert not (counts[0] & counts[1]) and not (counts[1] & counts[2]) and not (counts[0] & counts[2])
    total = len(run["targets"]) * len(run["cases"])
    assert sum(map(len, counts)) == total
    assert max(map(len, counts)) - min(map(len, counts)) <= 1
    # The same shard twice: the same slice.
    syncprobe("run", "--target", "reference:*", "--shard", "2/3", "--out", tmp_path / "again",
              "--no-progress", check=True)
    assert {p.relative_to(tmp_path / "again") for p in (tmp_path / "again").glob("*/*.json")} == counts[1]


@pytest.mark.parametrize("bad", ["0/2", "3/2", "2", "a/b"])
def test_bad_shard_is_a_usage_error(syncprobe, tmp_path, bad):
    proc = syncprobe("run", "--target", "reference:proposed", "--shard", bad, "--out", tmp_path / "x")
    assert proc.returncode == 2 and "K/N" in proc.stderr


def _sshd_binary(cache):
    """This machine's sshd, or one unpacked from Debian's packages into the
    test's cache (apt-get download, dpkg-deb -x: nothing is installed)."""
    if pathlib.Path("/usr/sbin/sshd").exists():
        return pathlib.Path("/usr/sbin/sshd"), {}
    root = cache / "root"
    if not (root / "usr/sbin/sshd").exists():
        cache.mkdir(parents=True, exist_ok=True)
        for pkg in ("openssh-server", "libwrap0"):
            got = subprocess.run(["apt-get", "download", pkg], cwd=cache, capture_output=True, text=True,
                                 timeout=300, stdin=subprocess.DEVNULL)
            if got.returncode != 0:
                return None, got.stderr.strip()[-300:]
        for deb in cache.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
    return root / "usr/sbin/sshd", {"LD_LIBRARY_PATH": str(root / "usr/lib/x86_64-linux-gnu")}


@pytest.fixture
def local_sshd(tmp_path):
    """An sshd of the test's own on 127.0.0.1 (a free port), root's login by a
    key made here, stopped at the end. It runs in a mount namespace of its own
    whose /run and /etc/passwd give it the privilege-separation directory and
    user it needs, so nothing of the machine's configuration changes (the
    commands it runs see that namespace too: only reference targets there)."""
    import socket
    import time
    if os.geteuid() != 0 or not shutil.which("ssh") or not shutil.which("unshare") or not shutil.which("rsync"):
        pytest.skip("needs root, ssh, unshare and rsync (scripts/setup)")
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "syncprobe" / "test-sshd"
    sshd, env = _sshd_binary(cache)
    if sshd is None:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot unpack sshd from Debian's packages: " + env)
        pytest.skip("no sshd, and Debian's package cannot be fetched: " + env)
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for k in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / k)], check=True)
    shutil.copy(keys / "user.pub", keys / "authorized_keys")
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    (keys / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "AllowUsers root\nPidFile none\nStrictModes no\n")
    passwd = pathlib.Path("/etc/passwd").read_text()
    if not any(line.startswith("sshd:") for line in passwd.splitlines()):
        passwd += "sshd:x:65534:65534:privilege separation:/nonexistent:/usr/sbin/nologin\n"
    (keys / "passwd").write_text(passwd)
    log = open(keys / "sshd.log", "w")
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o mode=755 syncprobe-test /run && mkdir -m 755 /run/sshd && '
         'mount --bind "$1" /etc/passwd && exec "$2" -D -e -f "$3"', "sh",
         str(keys / "passwd"), str(sshd), str(keys / "sshd_config")],
        env=dict(os.environ, **env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.time() + 20
        while "Server listening" not in (keys / "sshd.log").read_text():
            assert proc.poll() is None and time.time() < deadline, (keys / "sshd.log").read_text()
            time.sleep(0.1)
        login = (f"ssh -p {port} -i {keys / 'user'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                 "-o BatchMode=yes -o LogLevel=ERROR root@127.0.0.1")
        yield login, keys / "sshd.log"
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)
        log.close()


@needs_parallel
def test_reference_sharded_over_ssh_equals_unsharded(syncprobe, reference_runs, tmp_path, local_sshd):
    """GNU parallel as the distribution engine over ssh: each shard runs in an
    ssh session (two at a time on this 'remote'), writes into its working
    directory there, and parallel brings it back with --return (rsync)."""
    login, sshd_log = local_sshd
    local, remote = tmp_path / "local", tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    cmd = [PARALLEL, "--will-cite", "--halt", "now,fail=1", "--sshlogin", "2/" + login,
           "--workdir", str(remote), "--return", "shard-{}",
           str(EXE), "run", "--target", "'reference:*'", "--cases", str(pathlib.Path(__file__).parent.parent / "cases"),
           "--no-progress", "--shard", "{}/3", "--out", "shard-{}", ":::", "1", "2", "3"]
    done = subprocess.run(cmd, cwd=local, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    # Every shard went through sshd, and came back through --return.
    assert (sshd_log.read_text().count("Accepted publickey for root")) >= 3, sshd_log.read_text()[-2000:]
    for k in (1, 2, 3):
        assert (remote / f"shard-{k}" / "run.json").exists()
        assert (local / f"shard-{k}" / "run.json").read_bytes() == (remote / f"shard-{k}" / "run.json").read_bytes()
    syncprobe("merge", *[local / f"shard-{k}" for k in (1, 2, 3)], "-o", tmp_path / "merged", check=True)
    whole = json.loads((reference_runs / "whole" / "summary.json").read_text())
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert comparable(merged) == comparable(whole)


@needs_parallel
def test_reference_sharded_on_parallel_equals_unsharded(syncprobe, reference_runs, tmp_path):
    shards = sharded(tmp_path, 3, 3, "--target", "reference:*")
    proc = syncprobe("merge", *shards, "-o", tmp_path / "merged", check=True)
    assert "merged 3 runs" in proc.stdout
    whole = json.loads((reference_runs / "whole" / "summary.json").read_text())
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert comparable(merged) == comparable(whole)
    # The merged run is one run: its own id, where each part came from.
    run = json.loads((tmp_path / "merged" / "run.json").read_text())
    assert "shard" not in run and len(run["merged_from"]) == 3
    assert sorted(p["shard"]["index"] for p in run["merged_from"]) == [1, 2, 3]
    # Results that name their run name the merged one (and keep the part's id).
    parts = {p["id"] for p in run["merged_from"]}
    for p in (tmp_path / "merged").glob("*/*.json"):
        result = json.loads(p.read_text())
        assert result.get("run_id", run["id"]) == run["id"], p
        assert result.get("part_run_id", next(iter(parts))) in parts, p
    # It reports as the unsharded run does: the same JUnit and KTAP but for the run id.
    syncprobe("report", reference_runs / "whole", "-o", tmp_path / "site-whole", check=True)
    syncprobe("report", tmp_path / "merged", "-o", tmp_path / "site-merged", check=True)
    for f in ("junit.xml", "report.ktap", "summary.md"):
        a = (tmp_path / "site-whole" / f).read_text().replace(whole["run"]["id"], "RUN")
        b = (tmp_path / "site-merged" / f).read_text().replace(merged["run"]["id"], "RUN")
        assert a == b, f


@needs_parallel
@needs_root
def test_host_sharded_on_parallel_equals_unsharded(syncprobe, tmp_path):
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(tmp_path / "scratch"))
    # Cases whose outcome on this kernel does not depend on timing: two
    # unsharded runs of metadata-journal-failure on ext4 were seen to differ
    # (journal commit timing), which would say nothing about sharding.
    # sync-path-sync-file-range-write-only is left out: whether the
    # writeback it starts reaches the faulted blocks before the case ends
    # (or never, and the case is an error: the fault never fired) is timing.
    args = ["--target", "host:ext4", "--target", "host:xfs", "--case", "seed-*"]
    for c in ("fdatasync", "msync", "o-direct", "o-direct-buffered-fallback", "o-sync", "sync-file-range",
              "syncfs-after-fsync", "syncfs-other-process"):
        args += ["--case", f"sync-path-{c}"]
    syncprobe("run", *args, "--out", tmp_path / "whole", "--no-progress", check=True, env=env, timeout=1800)
    # Host shards on one machine run one at a time: they share its page cache.
    shards = sharded(tmp_path, 2, 1, *args, env=env)
    syncprobe("merge", *shards, "-o", tmp_path / "merged", check=True)
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert any(t.startswith("host:") for t in whole["targets"])
    assert comparable(merged) == comparable(whole)


def copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


def edit_run_json(d, change):
    p = d / "run.json"
    run = json.loads(p.read_text())
    change(run)
    p.write_text(json.dumps(run))


@pytest.fixture(scope="module")
def two_shards(syncprobe, tmp_path_factory):
    base = tmp_path_factory.mktemp("shard-pair")
    for k in (1, 2):
        syncprobe("run", "--target", "reference:proposed", "--shard", f"{k}/2", "--out", base / f"s{k}",
                  "--no-progress", check=True)
    return base / "s1", base / "s2"


def test_merge_refuses_another_version(syncprobe, two_shards, tmp_path):
    s2 = copy_run(two_shards[1], tmp_path / "s2")
    edit_run_json(s2, lambda r: r.update(syncprobe_version="9.9.9"))
    proc = syncprobe("merge", two_shards[0], s2, "-o", tmp_path / "m")
    assert proc.returncode == 2 and "9.9.9" in proc.stderr and "versions" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_merge_refuses_another_catalogue(syncprobe, two_shards, tmp_path):
    cases = tmp_path / "cases"
    shutil.copytree(BUILD / "share" / "syncprobe" / "cases", cases)
    seed = cases / "seed-single-writer.toml"
    seed.write_text(seed.read_text() + "\n# changed\n")
    syncprobe("run", "--cases", cases, "--target", "reference:proposed", "--shard", "2/2", "--out",
              tmp_path / "other", "--no-progress", check=True)
    proc = syncprobe("merge", two_shards[0], tmp_path / "other", "-o", tmp_path / "m")
    assert proc.returncode == 2 and "catalogue" in proc.stderr and "seed-single-writer" in proc.stderr


def test_merge_refuses_missing_or_repeated_shards(syncprobe, two_shards, tmp_path):
    proc = syncprobe("merge", two_shards[0], "-o", tmp_path / "m")
    assert proc.returncode == 2 and "shard 2/2 is missing" in proc.stderr
    proc = syncprobe("merge", two_shards[0], copy_run(two_shards[0], tmp_path / "again"), "-o", tmp_path / "m")
    assert proc.returncode == 2 and "given twice" in proc.stderr


def test_merge_refuses_an_unfinished_shard(syncprobe, two_shards, tmp_path):
    s2 = copy_run(two_shards[1], tmp_path / "s2")
    next((s2 / "reference:proposed").glob("*.json")).unlink()
    proc = syncprobe("merge", two_shards[0], s2, "-o", tmp_path / "m")
    assert proc.returncode == 2 and "did not finish" in proc.stderr


def test_merge_refuses_a_non_empty_output(syncprobe, two_shards, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep").write_text("x")
    proc = syncprobe("merge", *two_shards, "-o", tmp_path / "m")
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert syncprobe("merge", *two_shards, "-o", tmp_path / "ok").returncode == 0


def test_a_vm_kernel_stays_in_one_shard(syncprobe, tmp_path):
    """With an empty kernel cache every VM case is skipped at once, which
    shows the cut without booting: each kernel of the catalogue lands in
    exactly one shard, with every filesystem and every case."""
    env = dict(os.environ, SYNCPROBE_CACHE=str(tmp_path / "empty-cache"))
    kernels_of = []
    all_targets = set()
    for k in (1, 2):
        out = tmp_path / f"s{k}"
        syncprobe("run", "--target", "vm:*", "--shard", f"{k}/2", "--out", out, "--no-progress", check=True, env=env)
        run = json.loads((out / "run.json").read_text())
        vm_targets = {t for t in run["targets"] if t.startswith("vm:")}
        all_targets |= vm_targets
        held = {p.parent.name for p in out.glob("vm:*/*.json")}
        kernels = {t.split(":")[1] for t in held}
        assert kernels, "a shard of two holds at least one kernel of the catalogue"
        # Whole kernels: every filesystem of each kernel it holds, every case.
        assert held == {t for t in vm_targets if t.split(":")[1] in kernels}
        for t in held:
            assert len(list((out / t).glob("*.json"))) == len(run["cases"])
        kernels_of.append(kernels)
    assert not kernels_of[0] & kernels_of[1], "a kernel was cut between shards"
    assert kernels_of[0] | kernels_of[1] == {t.split(":")[1] for t in all_targets}


CACHE = pathlib.Path(os.environ.get("SYNCPROBE_CACHE")
                     or pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "syncprobe")
GUESTS = ("5.10", "7.3")  # what scripts/test fetches: the catalogue's oldest and newest
needs_guests = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or os.geteuid() != 0
    or not all((CACHE / "vm" / "kernels" / k / "kernel.json").exists() for k in GUESTS),
    reason="needs root, QEMU and kernels 5.10 and 7.3: syncprobe vm fetch 5.10 7.3")


@needs_parallel
@needs_guests
def test_two_guest_kernels_sharded_on_parallel_equal_unsharded(syncprobe, tmp_path):
    """Each shard boots its own kernel (a kernel is never cut), GNU parallel
    runs both at once, and the merge classifies as the run that booted both."""
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(tmp_path / "scratch"))
    args = ["--target", f"vm:{GUESTS[0]}:ext4", "--target", f"vm:{GUESTS[1]}:ext4", "--case", "seed-*"]
    for c in ("fdatasync", "msync", "o-direct", "o-sync", "sync-file-range"):  # not timing-dependent
        args += ["--case", f"sync-path-{c}"]
    syncprobe("run", *args, "--out", tmp_path / "whole", "--no-progress", check=True, env=env, timeout=1800)
    shards = sharded(tmp_path, 2, 2, *args, env=env)
    for s in shards:  # one kernel per shard
        run = json.loads((s / "run.json").read_text())
        held = {p.parent.name for p in s.glob("vm:*/*.json")}
        assert len({t.split(":")[1] for t in held}) == 1, held
    syncprobe("merge", *shards, "-o", tmp_path / "merged", check=True)
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    for s in (whole, merged):  # boot times differ from boot to boot
        for t in s["targets"].values():
            for k in ("boot_s", "boot_wall_s", "accelerator"):
                t["environment"].pop(k, None)
    assert comparable(merged) == comparable(whole)
