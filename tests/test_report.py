"""The HTML report, JUnit XML and Markdown summary, from a real run, and the
report rendered in a real browser (Debian's chromium, headless)."""
import html.parser
import json
import os
import pathlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest


@pytest.fixture(scope="module")
def runs(syncprobe, tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    a, b = base / "a", base / "b"
    syncprobe("run", "--target", "reference:*", "--out", a, "--no-progress", check=True)
    # A second run that differs: only two policies, so the comparison has
    # something to say about the targets both runs share.
    syncprobe("run", "--target", "reference:linux-4.17", "--target", "reference:proposed",
              "--case", "seed-*", "--out", b, "--no-progress", check=True)
    out = base / "site"
    proc = syncprobe("report", a, "-o", out, check=True)
    return a, b, out, proc


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids, self.srcs = [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        for k in ("src", "href"):
            if k in a:
                self.srcs.append(a[k])


def parse(path):
    p = Links()
    p.feed(path.read_text())
    return p


def test_files_written(runs):
    a, _, out, proc = runs
    assert str(out / "index.html") in proc.stdout
    for f in ("index.html", "junit.xml", "summary.md"):
        assert (out / f).exists(), f
    a = runs[0]
    targets = len(json.loads((a / "summary.json").read_text())["targets"])
    assert targets >= 6  # every reference policy
    assert len(list((out / "cases").rglob("*.html"))) >= targets * 24
    assert len(list((out / "targets").glob("*.html"))) == targets


def test_every_link_resolves_and_nothing_is_remote(runs):
    _, _, out, _ = runs
    for page in out.rglob("*.html"):
        p = parse(page)
        for ref in p.srcs:
            assert not re.match(r"^[a-z]+://", ref) or ref.startswith("file:"), (page, ref)
            assert not ref.startswith("//"), (page, ref)
        for href in p.links:
            target, _, anchor = href.partition("#")
            dest = (page.parent / target).resolve() if target else page
            assert dest.exists(), (page, href)
            if anchor and dest.suffix == ".html":
                assert anchor in parse(dest).ids, (page, href)
    text = (out / "index.html").read_text()
    assert "<script" not in text and "@import" not in text and "url(" not in text


def test_tables_are_semantic_and_marked(runs):
    _, _, out, _ = runs
    text = (out / "index.html").read_text()
    assert '<html lang="en">' in text
    assert text.count("<caption>") >= 3
    assert 'scope="col"' in text and 'scope="row"' in text
    assert "modelled, not measured" in text
    # Verdicts carry text and a symbol, not only a colour.
    assert "✓ pass" in text and "✗ fail" in text


def test_rule_cells_link_to_evidence(runs):
    a, _, out, _ = runs
    summary = json.loads((a / "summary.json").read_text())
    page = (out / "targets" / "reference_linux-4.17.html").read_text()
    assert 'id="R2"' in page
    failed = [e for e in summary["targets"]["reference:linux-4.17"]["evidence"]["R2"] if not e.get("pass", True)]
    assert failed
    assert f'cases/reference_linux-4.17/{failed[0]["case"]}.html#step-{failed[0]["step"]}' in page


def test_case_page_shows_steps(runs):
    _, _, out, _ = runs
    page = (out / "cases" / "reference_proposed" / "seed-two-process.html").read_text()
    assert "tag A" in page and "EIO" in page
    assert 'id="step-9"' in page


def test_a_signal_is_shown_as_the_outcome(runs):
    # A read through a mapping that dies with SIGBUS has no errno: the page
    # says which signal, and the report is still built.
    _, _, out, _ = runs
    page = (out / "cases" / "reference_linux-5.8_xfs" / "shutdown-dirty-data-log.html").read_text()
    assert "-1 SIGBUS" in page


def test_junit(runs):
    a, _, out, _ = runs
    summary = json.loads((a / "summary.json").read_text())
    root = ET.parse(out / "junit.xml").getroot()
    suites = root.findall("testsuite")
    targets = len(summary["targets"])
    assert len(suites) == targets
    cases = root.findall(".//testcase")
    assert len(cases) == targets * len(json.loads((a / "run.json").read_text())["cases"])
    proposed = next(s for s in suites if s.get("name") == "reference:proposed")
    assert proposed.get("failures") == "0"
    linux = next(s for s in suites if s.get("name") == "reference:linux-4.17")
    failed = [c.get("name") for c in linux.findall("testcase") if c.find("failure") is not None]
    expected = [c for c, v in summary["targets"]["reference:linux-4.17"]["cases"].items() if v["checks_failed"]]
    assert sorted(failed) == sorted(expected)


def test_markdown(runs):
    _, _, out, _ = runs
    md = (out / "summary.md").read_text()
    assert "| reference:proposed |" in md
    assert "until-persisted" in md


def test_compare(syncprobe, runs, tmp_path):
    a, b, _, _ = runs
    proc = syncprobe("report", a, "--compare", b, "-o", tmp_path / "cmp", check=True)
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert "What changed" in page
    # run b has only the seed cases, so profile axes decided by other cases changed
    assert "->" in proc.stdout


def test_bad_input(syncprobe, tmp_path):
    assert syncprobe("report", tmp_path / "nope").returncode == 2
    (tmp_path / "empty").mkdir()
    proc = syncprobe("report", tmp_path / "empty")
    assert proc.returncode == 2 and "run.json" in proc.stderr


CHROMIUM = shutil.which("chromium")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: scripts/setup --browser")
def test_renders_in_chromium(runs, tmp_path):
    _, _, out, _ = runs
    shot = tmp_path / "report.png"
    netlog = tmp_path / "net.json"
    subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--log-net-log={netlog}", "--window-size=1280,1800",
                    f"--screenshot={shot}", (out / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    # Phone width: it still renders (tables scroll inside their boxes).
    phone = tmp_path / "phone.png"
    subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile3'}",
                    "--window-size=390,844", f"--screenshot={phone}", (out / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert phone.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                          "--dump-dom", (out / "index.html").as_uri()],
                         check=True, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL).stdout
    assert "What each platform does after a write fails" in dom
    assert dom.count("<table") >= 3 and "<svg" in dom
    assert dom.count('href="targets/') >= 6 * 7
    # No request of the page left the machine: file: loads do not appear in
    # the net log, so every network request in it must be one of Chromium's
    # own background services (time sync, updates, spelling dictionary),
    # which it contacts whatever page it shows.
    log = netlog.read_text(errors="replace")
    urls = set(re.findall(r'"url":"([^"]+)"', log))
    browser_own = re.compile(r"^https?://([a-z0-9-]+\.)*(google\.com|googleapis\.com|googleusercontent\.com|gstatic\.com|gvt1\.com)/")
    remote = [u for u in urls if not u.startswith(("file:", "data:", "chrome:", "about:"))
              and not browser_own.match(u)]
    assert remote == [], remote
