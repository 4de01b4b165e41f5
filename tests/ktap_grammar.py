"""A strict checker of KTAP version 1, written from the kernel's specification
(Documentation/dev-tools/ktap.rst): version lines, plan lines, test case
result lines, diagnostic lines, and nested tests indented by two spaces.
syncprobe writes no "unknown lines", so this checker treats them as errors."""
import re
from dataclasses import dataclass, field

RESULT = re.compile(r"^(ok|not ok) ([1-9][0-9]*)(?: ([^#]*[^# ]))?(?: # ?(.*))?$")
PLAN = re.compile(r"^1\.\.([0-9]+)$")
DIRECTIVES = ("SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR")


class KtapError(ValueError):
    pass


@dataclass
class Test:
    ok: bool
    number: int
    name: str
    directive: str | None
    diagnostic: str
    subtests: list = field(default_factory=list)
    line: int = 0


def parse(text):
    """The top-level tests of a KTAP document; raises KtapError naming the line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pos = 0

    def fail(msg, at=None):
        n = pos if at is None else at
        shown = lines[n] if n < len(lines) else "<end>"
        raise KtapError(f"line {n + 1}: {msg}: {shown!r}")

    def at_indent(line, indent):
        return line.startswith(" " * indent) and not line[indent:].startswith(" ")

    def block(indent):
        nonlocal pos
        if pos >= len(lines) or lines[pos] != " " * indent + "KTAP version 1":
            fail(f"expected 'KTAP version 1' indented by {indent}")
        pos += 1
        while pos < len(lines) and at_indent(lines[pos], indent) and lines[pos][indent:].startswith("#"):
            pos += 1  # diagnostics (e.g. "# Subtest: name") before the plan
        m = PLAN.match(lines[pos][indent:]) if pos < len(lines) and at_indent(lines[pos], indent) else None
        if not m:
            fail("expected a plan line 1..N after the version line")
        planned = int(m.group(1))
        pos += 1
        tests = []
        while pos < len(lines):
            line = lines[pos]
            if not at_indent(line, indent):
                if line.startswith(" " * (indent + 2)) and line.strip() == "KTAP version 1":
                    subtests = block(indent + 2)
                    if pos >= len(lines) or not at_indent(lines[pos], indent) or not RESULT.match(lines[pos][indent:]):
                        fail("nested tests must end with their parent's result line")
                    tests.append(result(indent, subtests))
                    continue
                if indent > 0 and len(line) - len(line.lstrip(" ")) < indent:
                    break  # the parent's result line
                fail(f"unexpected indentation (expected {indent} spaces)")
            body = line[indent:]
            if body.startswith("#"):
                pos += 1
                continue
            if RESULT.match(body):
                tests.append(result(indent, []))
                continue
            fail("not a KTAP line (version, plan, result or diagnostic)")
        for i, t in enumerate(tests, 1):
            if t.number != i:
                raise KtapError(f"line {t.line}: test number {t.number}, expected {i}")
        if len(tests) != planned:
            raise KtapError(f"plan 1..{planned} but {len(tests)} results at indentation {indent}")
        return tests

    def result(indent, subtests):
        nonlocal pos
        m = RESULT.match(lines[pos][indent:])
        ok, number, name, rest = m.group(1) == "ok", int(m.group(2)), m.group(3) or "", m.group(4) or ""
        word = rest.split(" ", 1)[0]
        directive = word if word in DIRECTIVES else None
        if directive in ("TIMEOUT", "ERROR") and ok:
            fail(f"{directive} requires 'not ok'")
        if ok and directive is None and any(not s.ok and s.directive != "SKIP" for s in subtests):
            fail("a test with a failed subtest must not be 'ok'")
        t = Test(ok, number, name, directive, rest[len(word):].strip() if directive else rest, subtests, pos + 1)
        pos += 1
        return t

    tests = block(0)
    if pos != len(lines):
        fail("text after the last top-level result")
    return tests
