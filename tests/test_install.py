"""An installed syncprobe: `cmake --install` into a prefix and the .deb
(CPack), each run from /tmp with the checkout hidden. The man pages and the
bash completion come from the binary's own option tables."""
import gzip
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPROBE_")}


def hidden_checkout(argv):
    """argv run with the repository and the build tree out of sight: as root an
    empty directory is mounted over the checkout in a private mount namespace;
    otherwise the command only runs from elsewhere."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return argv
    script = 'mount -t tmpfs none "$0" && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(ROOT), "sh", *map(str, argv)]


def run_installed(exe, args, cwd, cache, timeout=600):
    env = dict(CLEAN_ENV, XDG_CACHE_HOME=str(cache), HOME=str(cwd))
    return subprocess.run(hidden_checkout([exe, *args]), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def check_main_job(exe, tmp_path):
    """From an empty directory under /tmp: list, run the reference targets, report."""
    work = pathlib.Path("/tmp") / f"syncprobe-installed-{os.getpid()}-{tmp_path.name}"
    work.mkdir()
    try:
        cache = tmp_path / "cache"
        proc = run_installed(exe, ["list", "cases"], work, cache)
        assert proc.returncode == 0, proc.stderr
        assert "seed-two-process" in proc.stdout
        assert str(ROOT) not in proc.stdout
        proc = run_installed(exe, ["run", "--target", "reference:*", "--no-progress"], work, cache)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (run_dir,) = (work / "results").iterdir()
        summary = json.loads((run_dir / "summary.json").read_text())
        policies = run_installed(exe, ["list", "policies"], work, cache).stdout.splitlines()
        assert len(policies) >= 6
        assert len(summary["targets"]) == len(policies)
        proc = run_installed(exe, ["report", run_dir.relative_to(work)], work, cache)
        assert proc.returncode == 0, proc.stderr
        site = work / "reports" / run_dir.name
        for f in ("index.html", "junit.xml", "report.ktap", "summary.md"):
            assert (site / f).exists(), f
        # Caches go under $XDG_CACHE_HOME.
        proc = run_installed(exe, ["vm", "status"], work, cache)
        assert proc.returncode == 0, proc.stderr
        assert str(cache / "syncprobe") in proc.stdout
        if os.geteuid() == 0 and pathlib.Path("/dev/fuse").exists():
            # The host target finds syncprobe-blockdev in libexec/syncprobe beside the binary.
            env_scratch = tmp_path / "scratch"
            proc = run_installed(exe, ["run", "--target", "host:ext4", "--case", "seed-single-writer",
                                       "--out", "host-run", "--no-progress"], work, cache)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            res = json.loads((work / "host-run" / "host:ext4" / "seed-single-writer.json").read_text())
            assert res["status"] == "completed", res["reason"]
            if shutil.which("fiu-run"):
                # The worker exec'd under libfiu: syncprobe-worker, found beside the binary too.
                proc = run_installed(exe, ["run", "--target", "host:ext4", "--case", "libfiu-fsync-eio",
                                           "--out", "fiu-run", "--no-progress"], work, cache)
                assert proc.returncode == 0, proc.stdout + proc.stderr
                res = json.loads((work / "fiu-run" / "host:ext4" / "libfiu-fsync-eio.json").read_text())
                assert res["status"] == "completed", res["reason"]
                assert [s["errno"] for s in res["steps"] if s["op"] == "fsync"] == [None, "EIO", None]
            del env_scratch
            if shutil.which("fio") and shutil.which("fusermount3"):
                # bench --fio: the installed helper with the installed jobs and this binary;
                # 0 or 1 is its verdict on the goals (not asserted: no timing in tests).
                proc = run_installed(exe, ["bench", "--fio", "--runtime", "1", "--policy", "proposed",
                                           "-o", "fio-run"], work, cache)
                assert proc.returncode in (0, 1), proc.stdout + proc.stderr
                figures = json.loads((work / "fio-run" / "fio.json").read_text())["results"]
                assert set(figures) == {"randwrite-fsync16", "seqwrite-1m", "randread-4k"}
                for job in figures.values():
                    assert set(job) == {"tmpfs", "passthrough", "refmount:proposed"}, job
                    assert all(r["ops"] > 0 for r in job.values()), job
                assert "syncprobe-fio-" not in pathlib.Path("/proc/mounts").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    where = tmp_path_factory.mktemp("install")
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(where / "first")], check=True,
                   capture_output=True, timeout=300)
    # Moved after installing: nothing may point back at the install location either.
    shutil.move(where / "first", where / "moved")
    return where / "moved"


def test_install_layout(prefix):
    for f in ("bin/syncprobe", "libexec/syncprobe/syncprobe-blockdev", "libexec/syncprobe/syncprobe-guest",
              "libexec/syncprobe/syncprobe-worker",
              "libexec/syncprobe/syncprobe-bench-fio", "share/syncprobe/fio/seqwrite-1m.fio",
              "share/syncprobe/cases/seed-two-process.toml", "share/bash-completion/completions/syncprobe",
              "share/man/man1/syncprobe.1.gz", "share/man/man1/syncprobe-run.1.gz",
              "share/man/man1/syncprobe-merge.1.gz", "share/doc/syncprobe/copyright"):
        assert (prefix / f).exists(), f
    assert not (prefix / "share/syncprobe/cases").is_symlink()


def test_installed_tool_runs_the_main_job(prefix, tmp_path):
    check_main_job(prefix / "bin" / "syncprobe", tmp_path)


def test_man_pages_come_from_the_option_tables(prefix):
    help_text = subprocess.run([BUILD / "bin" / "syncprobe", "run", "--help"], capture_output=True,
                               text=True, check=True).stdout
    page = gzip.decompress((prefix / "share/man/man1/syncprobe-run.1.gz").read_bytes()).decode()
    assert ".TH SYNCPROBE-RUN" in page
    for opt in ("--target", "--shard", "--out", "--step-timeout"):
        assert opt in help_text
        assert opt.replace("-", "\\-") in page, opt
    subs = [p.name.removeprefix("syncprobe-").removesuffix(".1.gz")
            for p in (prefix / "share/man/man1").glob("syncprobe-*.1.gz")]
    top = subprocess.run([BUILD / "bin" / "syncprobe", "--help"], capture_output=True, text=True, check=True).stdout
    listed = top.split("Subcommands:")[1].strip().split("\n\n")[0].splitlines()
    assert sorted(subs) == sorted(line.split()[0] for line in listed)
    assert {"run", "merge", "report"} <= set(subs)
    if shutil.which("man"):
        rendered = subprocess.run(["man", "-l", prefix / "share/man/man1/syncprobe-merge.1.gz"],
                                  capture_output=True, text=True, env=dict(CLEAN_ENV, MANWIDTH="100"))
        assert rendered.returncode == 0 and "combine" in rendered.stdout.lower()


def complete(script, *words):
    """What bash completion offers after `words` (the last one being completed)."""
    line = " ".join(words)
    cmd = (f'source "{script}"; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; '
           '_syncprobe; printf "%s\\n" "${COMPREPLY[@]}"')
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True,
                          env=dict(CLEAN_ENV, PATH=f"{BUILD / 'bin'}:{os.environ['PATH']}")).stdout.split()


def test_bash_completion(prefix):
    script = prefix / "share/bash-completion/completions/syncprobe"
    assert complete(script, "syncprobe", "me") == ["merge"]
    assert "--shard" in complete(script, "syncprobe", "run", "--sh")
    assert complete(script, "syncprobe", "list", "tar") == ["targets"]
    assert complete(script, "syncprobe", "list", "ta") == ["targets", "taxonomy"]
    assert "reference:proposed" in complete(script, "syncprobe", "run", "--target", "reference:p")
    assert "seed-two-process" in complete(script, "syncprobe", "run", "--case", "seed-t")
    assert "refmount:proposed" in complete(script, "syncprobe", "run", "--target", "refmount:p")
    assert complete(script, "syncprobe", "mo") == ["mount"]
    assert complete(script, "syncprobe", "mount", "--policy", "prop") == ["proposed"]


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run(["cpack", "-G", "DEB", "-B", str(out), "--config", str(BUILD / "CPackConfig.cmake")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (pkg,) = out.glob("syncprobe_*.deb")
    return pkg


def test_deb_dependencies(deb):
    field = lambda f: subprocess.run(["dpkg-deb", "-f", deb, f], capture_output=True, text=True,
                                     check=True).stdout
    depends, recommends, suggests = field("Depends"), field("Recommends"), field("Suggests")
    for p in ("e2fsprogs", "xfsprogs", "btrfs-progs", "fuse3", "libfuse3-3", "libc6"):
        assert p in depends, p
    # fault:libfiu cases need fiu-run and fiu-ctrl; libfiu0 itself comes from shlibdeps.
    for p in ("dmsetup", "fiu-utils"):
        assert p in recommends and p not in depends, p
    for p in ("qemu-system-x86", "qemu-utils", "sqlite3", "postgresql", "redis-server", "redis-tools",
              "lmdb-utils", "thin-provisioning-tools", "chromium"):
        assert p in suggests and p not in depends, p


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian missing: scripts/setup installs it")
def test_lintian_reports_no_errors(deb):
    proc = subprocess.run(["lintian", "--fail-on", "error", "--tag-display-limit", "0", deb],
                          capture_output=True, text=True, timeout=900)
    errors = [l for l in proc.stdout.splitlines() if l.startswith("E:")]
    assert proc.returncode == 0 and errors == [], proc.stdout + proc.stderr


def test_deb_unpacked_runs_the_main_job(deb, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["dpkg", "-x", deb, root], check=True)
    check_main_job(root / "usr" / "bin" / "syncprobe", tmp_path)
