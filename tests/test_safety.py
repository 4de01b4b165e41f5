"""Safe as root (issue 12, docs/safety.md): a run touches only what it
created under a scratch root it created and checked, refuses other users,
cleans up after every kind of failure, and rejects bad input with a clear
message. Each test names the guarantee it pins. They drive the built CLI as
an attacker or a careless user would; the host ones need root and /dev/fuse.

Leftovers are always looked for under this test's own scratch directory and
processes (other helpers run syncprobe on this machine at the same time)."""
import json
import os
import pathlib
import random
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, ROOT

SP = BUILD / "bin" / "syncprobe"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
NO_FUSE = pytest.mark.skipif(not pathlib.Path("/dev/fuse").exists(), reason="no /dev/fuse")


def host(test):
    """Marks a test that runs host targets: root and /dev/fuse."""
    return ROOT_ONLY(NO_FUSE(test))
SEED = ROOT / "cases" / "seed-single-writer.toml"


# ---- helpers ---------------------------------------------------------------------------

def loops():
    """Loop device name -> backing file, now."""
    out = {}
    for loop in pathlib.Path("/sys/block").glob("loop*"):
        try:
            out[loop.name] = (loop / "loop" / "backing_file").read_text().strip()
        except OSError:
            pass
    return out


def run_leftovers(path, before=None):
    """Mounts, loop devices and processes that belong under `path`. With
    `before` (a loops() snapshot), also loop devices attached since then whose
    backing file is gone: a loop over a FUSE file whose daemon died shows
    "/dev" as its backing, not the path it was attached to."""
    path = str(path)
    found = []
    if before is not None:
        for name, backing in loops().items():
            if before.get(name) != backing and (backing in ("/", "/dev") or backing.endswith(" (deleted)")):
                found.append(f"loop /dev/{name} over {backing} (attached during the test)")
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == path or point.startswith(path + "/"):
            found.append(f"mount {point}")
    for loop in pathlib.Path("/sys/block").glob("loop*"):
        try:
            backing = (loop / "loop" / "backing_file").read_text().strip()
        except OSError:
            continue
        if backing.startswith(path + "/"):
            found.append(f"loop /dev/{loop.name} over {backing}")
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd == path or cwd.startswith(path + "/") or (path + "/") in cmd:
            found.append(f"process {proc.name} (cwd {cwd}): {cmd[:120]}")
    return found


def children(pid):
    """(pid, comm) of the direct children of `pid`."""
    out = []
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append((int(p.name), comm))
    return out


def workers(runner, scratch):
    """The runner's step workers: forks of syncprobe working in a scratch mount."""
    found = []
    for pid, comm in children(runner):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if comm == "syncprobe" and cwd.startswith(str(scratch) + "/"):
            found.append(pid)
    return found


def daemons(runner):
    return [pid for pid, comm in children(runner) if comm.startswith("syncprobe-block")]


def wait_for(what, proc, timeout=120):
    """Polls `what()` until it returns something truthy; fails if `proc` ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = what()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended ({proc.returncode}) first:\n{out}\n{err}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def stop(proc):
    """Ends a run the test no longer wants: Ctrl-C first so that it cleans up."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start(args, scratch, **kw):
    env = dict(os.environ, SYNCPROBE_SCRATCH=str(scratch))
    env.update(kw.pop("env", {}))
    return subprocess.Popen([str(SP), *map(str, args)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def run(args, scratch=None, timeout=600, **kw):
    env = dict(os.environ)
    if scratch is not None:
        env["SYNCPROBE_SCRATCH"] = str(scratch)
    env.update(kw.pop("env", {}))
    return subprocess.run([str(SP), *map(str, args)], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, **kw)


def result(out, target, case):
    return json.loads((pathlib.Path(out) / target / f"{case}.json").read_text())


def case_dir(tmp_path, text_by_id):
    d = tmp_path / "cases"
    d.mkdir(exist_ok=True)
    for cid, text in text_by_id.items():
        (d / f"{cid}.toml").write_text(text)
    return d


def world_dir():
    """A directory like /var/tmp (sticky, world-writable) that nobody can use."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="syncprobe-safety-"))
    d.chmod(0o1777)
    return d


def mounted(point):
    return any(line.split()[4] == str(point)
               for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines())


HANG_CASE = '''id = "{id}"
title = "a harness step on a device that holds every write"
description = "Dirty data, then the device stops answering writes, then {op}."
step = [
  {{ op = "open", fd = "a" }},
  {{ op = "pwrite", fd = "a", len = "8K", tag = "old" }},
  {{ op = "fsync", fd = "a" }},
  {{ op = "pwrite", fd = "a", len = "4K", tag = "A" }},
  {{ op = "close", fd = "a" }},
  {{ op = "fault", range = "device", io = "write", mode = "hang" }},
  {{ op = "{op}", probe = "hang.step" }},
  {{ op = "heal" }},
  {{ op = "read_back", probe = "hang.disk" }},
]
'''

FSYNC_HANG_CASE = '''id = "{id}"
title = "fsync on a device that holds the file's data writes"
description = "The fsync cannot return until the device is healed."
step = [
  {{ op = "open", fd = "a" }},
  {{ op = "pwrite", fd = "a", len = "8K", tag = "old" }},
  {{ op = "fsync", fd = "a" }},
  {{ op = "fault", range = "data", io = "write", mode = "hang" }},
  {{ op = "pwrite", fd = "a", len = "4K", tag = "A" }},
  {{ op = "fsync", fd = "a", probe = "held.fsync" }},
  {{ op = "pread", fd = "a", probe = "held.read" }},
  {{ op = "close", fd = "a" }},
]
'''


def busy_case(rounds=100):
    """Two processes taking turns, so that one worker is idle while the other works."""
    steps = ['  { op = "open", fd = "a" },', '  { op = "open", fd = "b", proc = "b" },']
    for i in range(rounds):
        steps += [f'  {{ op = "pwrite", fd = "a", off = "{i * 64}K", len = "64K", tag = "A" }},',
                  '  { op = "fsync", fd = "a" },',
                  f'  {{ op = "pwrite", fd = "b", proc = "b", off = "{i * 64}K", len = "64K", tag = "B" }},',
                  '  { op = "fsync", fd = "b", proc = "b" },']
    steps += ['  { op = "close", fd = "a" },', '  { op = "close", fd = "b", proc = "b" },',
              '  { op = "read_back", len = "64K" },']
    return ('id = "busy"\ntitle = "two processes writing in turn"\n'
            'description = "Long enough to be killed in the middle."\nstep = [\n'
            + "\n".join(steps) + "\n]\n")


# ---- 1. the scratch root: created by the run, checked every time --------------------------

@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
@pytest.mark.parametrize("how", ["owned-by-nobody", "symlink-by-nobody", "world-writable"])
@host
def test_a_scratch_root_made_by_someone_else_is_refused(how, tmp_path):
    base = world_dir()
    try:
        scratch = base / "scratch"
        decoy = tmp_path / "decoy"  # root's directory the attacker points at
        decoy.mkdir()
        if how == "owned-by-nobody":
            subprocess.run([*NOBODY, "mkdir", "-m", "0777", str(scratch)], check=True)
        elif how == "symlink-by-nobody":
            subprocess.run([*NOBODY, "ln", "-s", str(decoy), str(scratch)], check=True)
        else:
            scratch.mkdir()
            scratch.chmod(0o777)
        proc = run(["run", "--target", "host:ext4", "--case", "seed-single-writer",
                    "--out", tmp_path / "out", "--no-progress"], scratch)
        assert proc.returncode == 2, proc.stderr
        assert str(scratch) in proc.stderr and "scratch" in proc.stderr, proc.stderr
        assert "nothing was run" in proc.stderr
        assert list(decoy.iterdir()) == [], "nothing is created through the attacker's link"
        if not scratch.is_symlink():
            assert list(scratch.iterdir()) == [], "nothing is created in a root someone else controls"
        assert not (tmp_path / "out" / "run.json").exists()
    finally:
        subprocess.run(["rm", "-rf", str(base)])


@host
def test_the_run_creates_its_scratch_root_private(tmp_path):
    scratch = tmp_path / "fresh" / "scratch"
    proc = run(["run", "--target", "host:ext4", "--case", "seed-single-writer",
                "--out", tmp_path / "out", "--no-progress"], scratch)
    assert proc.returncode == 0, proc.stderr
    st = scratch.lstat()
    assert st.st_uid == os.geteuid() and (st.st_mode & 0o777) == 0o700, oct(st.st_mode)
    assert result(tmp_path / "out", "host:ext4", "seed-single-writer")["status"] == "completed"


def test_a_reference_run_needs_no_scratch_root(tmp_path):
    # A scratch root nobody could use must not stop modelled targets.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    scratch.chmod(0o777)
    (scratch / "keep").write_text("x")
    proc = run(["run", "--target", "reference:proposed", "--case", "seed-single-writer",
                "--out", tmp_path / "out", "--no-progress"], scratch)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in scratch.iterdir()] == ["keep"]


# ---- 2. only what carries the run's own marker is cleaned -----------------------------------

@host
def test_unrelated_files_and_mounts_in_the_scratch_root_survive(tmp_path):
    scratch = tmp_path / "shared"
    scratch.mkdir(mode=0o700)
    (scratch / "notes.txt").write_text("mine")
    (scratch / "project").mkdir()
    (scratch / "project" / "data.bin").write_bytes(b"\1" * 100)
    (scratch / "old-looking-run").mkdir()
    (scratch / "old-looking-run" / "owner.pid").write_text("999999\n")  # a dead pid, not a marker
    (scratch / "old-looking-run" / "file").write_text("keep")
    tmpfs = scratch / "mnt"
    tmpfs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "syncprobe-test", str(tmpfs)], check=True)
    try:
        (tmpfs / "inside").write_text("on tmpfs")
        for targets in (["reference:proposed"], ["host:ext4"]):
            args = ["run", "--case", "seed-single-writer", "--out", tmp_path / targets[0].replace(":", "-"),
                    "--no-progress"]
            for t in targets:
                args += ["--target", t]
            proc = run(args, scratch)
            assert proc.returncode == 0, proc.stderr
            assert mounted(tmpfs), f"{targets}: the unrelated tmpfs was unmounted"
            assert (tmpfs / "inside").read_text() == "on tmpfs"
            assert (scratch / "notes.txt").read_text() == "mine"
            assert (scratch / "project" / "data.bin").read_bytes() == b"\1" * 100
            assert (scratch / "old-looking-run" / "file").read_text() == "keep"
        assert result(tmp_path / "host-ext4", "host:ext4", "seed-single-writer")["status"] == "completed"
        assert sorted(p.name for p in scratch.iterdir()) == ["mnt", "notes.txt", "old-looking-run", "project"]
    finally:
        subprocess.run(["umount", "-l", str(tmpfs)])


# ---- 3, 4, 6. kill -9 anywhere: the run goes on, or the next run cleans up ------------------------

@host
def test_kill_9_of_worker_daemon_or_runner_leaves_nothing(tmp_path):
    seed = int(os.environ.get("SYNCPROBE_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"seed {seed} (SYNCPROBE_TEST_SEED to repeat)")
    cases = case_dir(tmp_path, {"busy": busy_case()})
    shutil.copy(SEED, cases)
    scratch = tmp_path / "scratch"
    attached = loops()
    pending = []  # run directories of killed runners, to be cleaned by the next run
    worker_errors = runner_kills = 0
    for trial in range(20):
        victim = ["worker", "daemon", "runner"][trial % 3]
        entries = set(scratch.iterdir()) if scratch.exists() else set()
        out = tmp_path / f"out{trial}"
        proc = start(["run", "--cases", cases, "--target", "host:ext4", "--out", out,
                      "--no-progress", "--step-timeout", 5000], scratch)
        try:
            if victim == "worker":
                pid = wait_for(lambda: workers(proc.pid, scratch), proc)[0]
            elif victim == "daemon":
                pid = wait_for(lambda: daemons(proc.pid), proc)[0]
            else:
                pid = proc.pid
                wait_for(lambda: daemons(proc.pid), proc)
            time.sleep(rng.uniform(0, 1.0))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            stop(proc)
        # The earlier killed runs are gone now that this run has started.
        for d in pending:
            assert run_leftovers(d) == [], (trial, d)
            assert not d.exists(), f"trial {trial}: {d} of a killed run is still there"
        pending = []
        mine = sorted(set(scratch.iterdir()) - entries)
        if victim == "runner" and proc.returncode != 0:
            assert proc.returncode == -signal.SIGKILL
            runner_kills += 1
            pending = mine
            continue
        # (A runner that finished before the kill landed is checked as a whole run.)
        # A dead worker or daemon costs its case, never the runner.
        assert proc.returncode == 0, f"trial {trial} ({victim}): exit {proc.returncode}\n{stderr}"
        for cid in ("busy", "seed-single-writer"):
            r = result(out, "host:ext4", cid)
            assert r["status"] in ("completed", "error"), (trial, victim, r["status"], r["reason"])
            if r["status"] == "error":
                assert victim in r["reason"] or "injector" in r["reason"], (trial, victim, r["reason"])
                worker_errors += victim == "worker"
        assert run_leftovers(scratch, attached) == [], (trial, victim)
        assert mine == [] or all(not p.exists() for p in mine), (trial, victim, mine)
    proc = run(["run", "--cases", cases, "--case", "seed-single-writer", "--target", "host:ext4",
                "--out", tmp_path / "final", "--no-progress"], scratch)
    assert proc.returncode == 0, proc.stderr
    for d in pending:
        assert run_leftovers(d) == [] and not d.exists(), d
    assert run_leftovers(scratch, attached) == []
    assert list(scratch.iterdir()) == [], "every run directory is gone"
    assert worker_errors > 0, "no worker kill landed mid-case: the test did not test anything"
    assert runner_kills > 0, "no runner kill landed mid-run: the test did not test anything"


@host
def test_sigterm_to_the_process_group_cleans_up(tmp_path):
    cases = case_dir(tmp_path, {"busy": busy_case()})
    scratch = tmp_path / "scratch"
    attached = loops()
    for trial in range(4):
        out = tmp_path / f"out{trial}"
        proc = start(["run", "--cases", cases, "--target", "host:ext4", "--out", out,
                      "--no-progress"], scratch)
        wait_for(lambda: workers(proc.pid, scratch), proc)
        time.sleep(0.1 * trial)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 128 + signal.SIGTERM, (trial, proc.returncode, err)
        assert "interrupted" in err
        assert run_leftovers(scratch, attached) == [], trial
        assert (out / "run.json").exists()


@host
def test_a_mount_that_fails_during_setup_leaks_nothing(tmp_path):
    # The daemon serves an image of zeros: losetup succeeds, mount fails.
    real = BUILD / "libexec" / "syncprobe" / "syncprobe-blockdev"
    zeros = tmp_path / "zeros.img"
    wrapper = tmp_path / "blockdev"
    # The wrapper drops the runner's --image and puts its own first.
    wrapper.write_text(f'''#!/usr/bin/env python3
import os, sys
a = sys.argv[1:]
i = a.index("--image")
del a[i:i + 2]
open("{zeros}", "wb").truncate(512 << 20)
os.execv("{real}", ["{real}", "--image", "{zeros}", *a])
''')
    wrapper.chmod(0o755)
    scratch = tmp_path / "scratch"
    attached = loops()
    proc = run(["run", "--target", "host:ext4", "--case", "seed-single-writer", "--out", tmp_path / "out",
                "--no-progress"], scratch, env={"SYNCPROBE_BLOCKDEV": str(wrapper)})
    assert proc.returncode == 0, proc.stderr
    r = result(tmp_path / "out", "host:ext4", "seed-single-writer")
    assert r["status"] == "error" and "mount" in r["reason"], r["reason"]
    assert run_leftovers(scratch, attached) == [], "the loop device of a failed setup is released"
    assert not scratch.exists() or list(scratch.iterdir()) == []


@host
def test_a_dead_injector_makes_the_case_an_error(tmp_path):
    cases = case_dir(tmp_path, {"held": FSYNC_HANG_CASE.format(id="held")})
    scratch = tmp_path / "scratch"
    attached = loops()
    proc = start(["run", "--cases", cases, "--target", "host:ext4", "--out", tmp_path / "out",
                  "--no-progress", "--step-timeout", 60000], scratch)
    try:
        def holding():
            return any("hangs until heal" in p.read_text(errors="replace")
                       for p in scratch.rglob("blockdev.log"))
        wait_for(holding, proc)
        for pid in daemons(proc.pid):
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    r = result(tmp_path / "out", "host:ext4", "held")
    assert r["status"] == "error", (r["status"], r["reason"], r["steps"][-1])
    assert "injector" in r["reason"] and "fuse-blockdev" in r["reason"], r["reason"]
    assert "SIGKILL" in r["reason"] or "killed" in r["reason"], r["reason"]
    assert run_leftovers(scratch, attached) == []


# ---- 5. the fault daemon answers only its runner ------------------------------------------

ATTACK = r'''
import json, socket, sys
out = []
cmd = sys.argv[1]
for name in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect("\0" + name[1:] if name.startswith("@") else name)
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        out.append([name, s.recv(4096).decode(errors="replace")])
    except OSError as e:
        out.append([name, "refused: %s" % e])
print(json.dumps(out))
'''


def unix_sockets(pid):
    """The unix sockets process `pid` holds: each one's name (a path or
    @abstract), or "" for an unnamed one (a socketpair, a client end)."""
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    names = []
    for line in pathlib.Path("/proc/net/unix").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) >= 7 and f[6] in inodes:
            names.append(f[7] if len(f) >= 8 else "")
    return names


def all_unix_names():
    """Every named unix socket of this network namespace."""
    return sorted({f[7] for f in (line.split() for line in
                                  pathlib.Path("/proc/net/unix").read_text().splitlines()[1:]) if len(f) >= 8})


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
@host
def test_another_user_cannot_drive_the_fault_daemon(tmp_path):
    cases = case_dir(tmp_path, {"held": FSYNC_HANG_CASE.format(id="held")})
    scratch = tmp_path / "scratch"
    attached = loops()
    proc = start(["run", "--cases", cases, "--target", "host:ext4", "--out", tmp_path / "out",
                  "--no-progress", "--step-timeout", 8000], scratch)
    try:
        daemon = wait_for(lambda: daemons(proc.pid), proc)[0]
        wait_for(lambda: any("hangs until heal" in p.read_text(errors="replace")
                             for p in scratch.rglob("blockdev.log")), proc)
        # Under a run the daemon's only control channel is the socketpair
        # with the runner: no socket of its has a name another user could
        # connect to (the named socket, for running it by hand, is
        # test_blockdev.py::test_control_socket_refuses_other_users).
        sockets = unix_sockets(daemon)
        assert sockets, "the daemon holds no unix socket at all: not the daemon, or the listing is broken"
        assert [n for n in sockets if n] == [], sockets
        # Every named socket on the machine that mentions syncprobe refuses
        # another user's heal (there should be none while the run is held).
        named = [n for n in all_unix_names() if "syncprobe" in n]
        attack = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", ATTACK, "heal", *named],
                                capture_output=True, text=True, timeout=60)
        assert attack.returncode == 0, attack.stderr
        replies = json.loads(attack.stdout)
        assert [n for n, _ in replies] == named
        for name, reply in replies:
            assert '"ok":true' not in reply.replace(" ", ""), (name, reply)
        _, err = proc.communicate(timeout=300)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    r = result(tmp_path / "out", "host:ext4", "held")
    assert r["status"] == "hung", ("the fault was healed by someone else", r["status"], r["reason"])
    assert run_leftovers(scratch, attached) == []


# ---- 7. every step ends within its timeout ------------------------------------------------

@pytest.mark.parametrize("op", ["writeback", "remount", "read_back"])
@host
def test_a_harness_step_on_a_hung_device_ends_as_hung(op, tmp_path):
    cid = "hang-" + op.replace("_", "-")
    cases = case_dir(tmp_path, {cid: HANG_CASE.format(id=cid, op=op)})
    shutil.copy(SEED, cases)
    scratch = tmp_path / "scratch"
    attached = loops()
    proc = run(["run", "--cases", cases, "--target", "host:ext4", "--out", tmp_path / "out",
                "--no-progress", "--step-timeout", 2000], scratch)
    assert proc.returncode == 0, proc.stderr
    r = result(tmp_path / "out", "host:ext4", cid)
    last = r["steps"][-1]
    assert r["status"] == "hung", (r["status"], r["reason"], last)
    assert last["op"] == op and last["hung"] is True, last
    assert "did not return in time" in r["reason"]
    # The daemon never had to give up on a held request: the harness did, at its own timeout.
    assert "timed out" not in r["environment"].get("injector_log", ""), r["environment"]["injector_log"]
    after = result(tmp_path / "out", "host:ext4", "seed-single-writer")
    assert after["status"] == "completed", "the run goes on after a hung case"
    assert run_leftovers(scratch, attached) == []


@host
def test_a_power_cut_on_a_hung_device_loses_what_it_held(tmp_path):
    # A power cut cannot hang: the device answers nothing any more, so what
    # it held fails at once, the dirty data dies with the power, and the
    # filesystem comes back (recovery) with what reached the disk before.
    cases = case_dir(tmp_path, {"hang-power-cut": HANG_CASE.format(id="hang-power-cut", op="power_cut")})
    scratch = tmp_path / "scratch"
    attached = loops()
    proc = run(["run", "--cases", cases, "--target", "host:ext4", "--out", tmp_path / "out",
                "--no-progress", "--step-timeout", 2000], scratch)
    assert proc.returncode == 0, proc.stderr
    r = result(tmp_path / "out", "host:ext4", "hang-power-cut")
    assert r["status"] == "completed", (r["status"], r["reason"])
    cut = next(o for o in r["steps"] if o["op"] == "power_cut")
    assert cut["ret"] == 0 and not cut.get("hung"), cut
    disk = r["steps"][-1]
    assert disk["op"] == "read_back" and disk["data"]["tag"] == "old", disk
    assert "timed out" not in r["environment"].get("injector_log", ""), r["environment"]["injector_log"]
    assert run_leftovers(scratch, attached) == []


# ---- 8. partial runs -------------------------------------------------------------------------

@host
def test_the_report_of_an_interrupted_run(tmp_path):
    out = tmp_path / "out"
    scratch = tmp_path / "scratch"
    attached = loops()
    proc = start(["run", "--target", "reference:proposed", "--target", "host:ext4", "--case", "seed-*",
                  "--out", out, "--no-progress"], scratch)
    wait_for(lambda: list((out / "host:ext4").glob("*.json")) if (out / "host:ext4").exists() else [], proc)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert run_leftovers(scratch, attached) == []
    rep = run(["report", out, "-o", tmp_path / "site"])
    assert rep.returncode == 0, rep.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert "partial" in index.lower() and "missing" in index.lower()
    results = list(out.glob("*/*.json"))
    plan = json.loads((out / "run.json").read_text())
    assert len(results) < len(plan["targets"]) * len(plan["cases"]), "the run really was cut short"


@host
def test_sigint_during_a_held_call_stops_at_once_and_the_case_runs_again_on_resume(tmp_path):
    """A worker's call held by the device is not waited for after SIGINT, and
    the case it cut short is not kept as a result: --resume runs it again."""
    cases = case_dir(tmp_path, {"held": FSYNC_HANG_CASE.format(id="held")})
    out = tmp_path / "out"
    scratch = tmp_path / "scratch"
    attached = loops()
    proc = start(["run", "--cases", cases, "--target", "host:ext4", "--out", out,
                  "--no-progress", "--step-timeout", 120000], scratch)
    try:
        wait_for(lambda: any("hangs until heal" in p.read_text(errors="replace")
                             for p in scratch.rglob("blockdev.log")), proc)
        time.sleep(0.5)  # the fsync is in the worker, held by the device
        t0 = time.time()
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        took = time.time() - t0
    finally:
        stop(proc)
    assert proc.returncode == 130, err
    # Not the 120 s step timeout: only the teardown (heal, unmount) is waited for.
    assert took < 60, (took, err)
    assert not (out / "host:ext4" / "held.json").exists(), "a case cut short by SIGINT was kept"
    assert run_leftovers(scratch, attached) == []
    res = run(["run", "--cases", cases, "--target", "host:ext4", "--out", out, "--no-progress",
               "--step-timeout", 2000, "--resume"], scratch)
    assert res.returncode == 0, res.stderr
    r = result(out, "host:ext4", "held")
    assert r["status"] == "hung", (r["status"], r["reason"])
    assert r["run_id"] == json.loads((out / "run.json").read_text())["id"]


def test_the_report_of_a_killed_run(tmp_path):
    out = tmp_path / "out"
    proc = run(["run", "--target", "reference:*", "--out", out, "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    # What kill -9 leaves: no summary, no finish time, some results missing.
    (out / "summary.json").unlink()
    run_json = json.loads((out / "run.json").read_text())
    del run_json["finished_at"]
    (out / "run.json").write_text(json.dumps(run_json))
    victims = sorted((out / "reference:openbsd").glob("*.json"))[:5]
    for v in victims:
        v.unlink()
    rep = run(["report", out, "-o", tmp_path / "site"])
    assert rep.returncode == 0, rep.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert "partial" in index.lower()
    import re
    said = re.search(r"(\d+) of (\d+) case results missing", index)
    assert said and int(said.group(1)) == len(victims), index[:3000]
    for v in victims:
        assert f"reference:openbsd {v.stem}" in index, v.stem


# ---- 9. one run per results directory --------------------------------------------------------

def test_a_used_out_directory_is_refused_unless_asked(tmp_path):
    out = tmp_path / "out"
    args = ["run", "--target", "reference:proposed", "--case", "seed-*", "--out", out, "--no-progress"]
    assert run(args).returncode == 0
    first = json.loads((out / "run.json").read_text())["id"]
    before = {p: p.read_bytes() for p in out.rglob("*.json")}
    for p in out.glob("*/*.json"):
        assert json.loads(p.read_text())["run_id"] == first, p
    again = run(args)
    assert again.returncode == 2, again.stderr
    assert "--overwrite" in again.stderr and "--resume" in again.stderr
    assert {p: p.read_bytes() for p in out.rglob("*.json")} == before, "nothing was mixed in"
    # --resume: only what is missing runs, under the same run id.
    gone = out / "reference:proposed" / "seed-two-process.json"
    gone.unlink()
    kept = out / "reference:proposed" / "seed-single-writer.json"
    kept_bytes = kept.read_bytes()
    res = run(args + ["--resume"])
    assert res.returncode == 0, res.stderr
    assert json.loads(gone.read_text())["run_id"] == first
    assert kept.read_bytes() == kept_bytes
    # --overwrite deletes only what a run writes: a file of the user's in a
    # target's directory (or a directory of theirs) stops it, and nothing goes.
    notes = out / "reference:proposed" / "notes.txt"
    notes.write_text("mine")
    refused = run(args + ["--overwrite"])
    assert refused.returncode == 2, refused.stderr
    assert "reference:proposed/notes.txt" in refused.stderr and "refusing" in refused.stderr
    assert notes.read_text() == "mine" and json.loads((out / "run.json").read_text())["id"] == first
    notes.unlink()
    mine = out / "reference:proposed" / "sub"
    mine.mkdir()
    assert run(args + ["--overwrite"]).returncode == 2
    assert mine.is_dir()
    mine.rmdir()
    # --overwrite: a new run, nothing of the old one left.
    ow = run(args + ["--overwrite"])
    assert ow.returncode == 0, ow.stderr
    second = json.loads((out / "run.json").read_text())["id"]
    assert second != first
    for p in out.glob("*/*.json"):
        assert json.loads(p.read_text())["run_id"] == second, p


def test_two_runs_into_one_out_directory(tmp_path):
    out = tmp_path / "out"
    args = ["run", "--target", "reference:*", "--out", out, "--no-progress"]
    a = start(args, tmp_path / "scratch")
    b = start(args, tmp_path / "scratch")
    ra, rb = a.communicate(timeout=600), b.communicate(timeout=600)
    assert sorted([a.returncode, b.returncode]) == [0, 2], (ra, rb)
    loser = ra if a.returncode == 2 else rb
    assert str(out) in loser[1]
    run_id = json.loads((out / "run.json").read_text())["id"]
    for p in out.glob("*/*.json"):
        assert json.loads(p.read_text())["run_id"] == run_id, p
    assert list(out.rglob(".*tmp*")) == [], "no temporary file left"


# ---- 10. stale-resource cleanup kills only the pids a marker lists ---------------------------

@host
def test_cleanup_kills_only_listed_processes_of_dead_runs(tmp_path):
    scratch = tmp_path / "scratch"
    attached = loops()
    scratch.mkdir(mode=0o700)
    fake = scratch / "20200101-000000-dead"
    fake.mkdir()
    (fake / "owner.pid").write_text("999999\n")
    bystander = subprocess.Popen(
        ["/usr/bin/python3", "-c", "import time; time.sleep(600)", "qemu-system-x86_64",
         "-drive", f"file={fake}/scratch.img"], stdin=subprocess.DEVNULL)
    try:
        proc = run(["run", "--target", "host:ext4", "--case", "seed-single-writer",
                    "--out", tmp_path / "out", "--no-progress"], scratch)
        assert proc.returncode == 0, proc.stderr
        assert bystander.poll() is None, "a process no marker listed was killed"
        assert (fake / "owner.pid").exists(), "a directory without a marker was removed"
        assert run_leftovers(scratch, attached) == [str(x) for x in run_leftovers(scratch) if "python3" in x]
    finally:
        bystander.kill()
        bystander.wait()


# ---- 11. bounds, at parse time, with file:line:col -------------------------------------------

BOUNDS = {
    "len-16g": ('{ op = "pwrite", fd = "a", len = "16G", tag = "A" }', 'len'),
    "len-2g": ('{ op = "pwrite", fd = "a", len = "2G", tag = "A" }', 'len'),
    "off-max": ('{ op = "pwrite", fd = "a", off = "18446744073709551615", tag = "A" }', 'off'),
    "count-wraps": ('{ op = "fault", range = "device", count = 4294967297 }', 'count'),
    "read-16g": ('{ op = "pread", fd = "a", len = "16G" }', 'len'),
}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_absurd_sizes_and_counts_are_rejected_at_parse_time(name, tmp_path):
    step, arg = BOUNDS[name]
    text = ('id = "c"\ntitle = "t"\ndescription = "d"\nstep = [\n  { op = "open", fd = "a" },\n'
            f'  {step},\n]\n')
    cases = case_dir(tmp_path, {"c": text})
    col = text.splitlines()[5].index(arg + " = ") + len(arg + " = ") + 1  # the value's column
    for sub in (["list", "cases", "--cases", cases],
                ["run", "--cases", cases, "--target", "reference:proposed", "--out", tmp_path / "o"]):
        proc = run(sub, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)),
                   timeout=60)
        assert proc.returncode == 2, (sub[0], proc.returncode, proc.stderr[-2000:])
        assert f"{cases}/c.toml:6:{col}: error: '{arg}' of" in proc.stderr, proc.stderr
        assert not (tmp_path / "o" / "run.json").exists()


def test_too_many_processes_are_rejected(tmp_path):
    steps = "\n".join(f'  {{ op = "open", fd = "f{i}", proc = "p{i}" }},' for i in range(40))
    text = f'id = "c"\ntitle = "t"\ndescription = "d"\nstep = [\n{steps}\n]\n'
    cases = case_dir(tmp_path, {"c": text})
    proc = run(["list", "cases", "--cases", cases], timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"{cases}/c.toml:" in proc.stderr and "processes" in proc.stderr, proc.stderr


# ---- 12. odd inputs ----------------------------------------------------------------------------

def limited():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_a_case_file_that_is_not_a_small_regular_file(kind, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(SEED, cases)
    bad = cases / "bad.toml"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "dev-zero":
        bad.symlink_to("/dev/zero")
    else:
        bad.write_text("# padding\n" * 300000)  # 3 MB of comments
    for sub in (["list", "cases", "--cases", cases],
                ["run", "--cases", cases, "--target", "reference:proposed", "--out", tmp_path / "o"]):
        try:
            proc = run(sub, preexec_fn=limited, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"syncprobe {sub[0]} hung on a {kind} case file")
        assert proc.returncode == 2, (sub[0], proc.returncode, proc.stderr[-2000:])
        assert f"{bad}: error:" in proc.stderr, proc.stderr
        assert "regular file" in proc.stderr or "larger than" in proc.stderr, proc.stderr


@ROOT_ONLY
def test_a_full_results_disk_is_a_clear_error(tmp_path):
    # Big enough for run.json, too small for the results that follow.
    probe = tmp_path / "probe"
    assert run(["run", "--target", "reference:proposed", "--out", probe, "--no-progress"]).returncode == 0
    disk = tmp_path / "disk"
    disk.mkdir()
    size = 64 * 1024 + (probe / "run.json").stat().st_size * 2  # run.json and its replacement
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "syncprobe-full", str(disk)], check=True)
    try:
        proc = run(["run", "--target", "reference:*", "--out", disk / "out", "--no-progress"])
        assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
        assert "No space left on device" in proc.stderr or "ENOSPC" in proc.stderr, proc.stderr
        assert str(disk / "out") in proc.stderr
        assert "terminate" not in proc.stderr
        for p in (disk / "out").rglob("*.json"):
            json.loads(p.read_text())  # complete files or none
    finally:
        subprocess.run(["umount", "-l", str(disk)])


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("busybox") is None or shutil.which("dmsetup") is None,
                    reason="scripts/setup --vm")
def test_a_cache_path_with_a_quote_runs_no_command(tmp_path):
    pwned = tmp_path / "PWNED"
    cache = tmp_path / f"c'; touch {pwned}; echo '"
    release = "9.9.9-syncprobe-test"
    k = cache / "vm" / "kernels" / "6.1"
    (k / "root" / "boot").mkdir(parents=True)
    (k / "root" / "boot" / f"vmlinuz-{release}").write_bytes(b"not a kernel")
    mods = k / "root" / "lib" / "modules" / release
    (mods / "kernel" / "fs" / "ext4").mkdir(parents=True)
    subprocess.run(["xz", "-z", "-c"], input=b"not a module", stdout=open(mods / "kernel/fs/ext4/ext4.ko.xz", "wb"),
                   check=True)
    (mods / "modules.dep").write_text("kernel/fs/ext4/ext4.ko.xz:\n")
    (k / "kernel.json").write_text(json.dumps({
        "name": "6.1", "release": release, "source": "debian", "packages": ["linux-image-test"],
        "vmlinuz": f"root/boot/vmlinuz-{release}", "modules": f"root/lib/modules/{release}", "config": ""}))
    proc = run(["vm", "build", "6.1"], env={"SYNCPROBE_CACHE": str(cache)}, timeout=300)
    assert not pwned.exists(), "a quote in the cache path ran a command"
    assert proc.returncode == 0, proc.stderr
    built = list((cache / "vm").glob("initramfs-*.cpio.gz"))
    assert len(built) == 1
    archive = subprocess.run(["gzip", "-dc", str(built[0])], capture_output=True, check=True).stdout
    listing = subprocess.run(["cpio", "-t"], input=archive, capture_output=True, check=True).stdout.decode()
    assert f"lib/modules/{release}/kernel/fs/ext4/ext4.ko" in listing
    long = subprocess.run(["cpio", "-tv"], input=archive, capture_output=True, check=True).stdout.decode()
    assert any(l.startswith("l") and l.endswith("bin/sh -> busybox") for l in long.splitlines()), \
        "links are archived as links (/init runs /bin/sh)"
