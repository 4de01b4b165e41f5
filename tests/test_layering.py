"""The layering rules of docs/design.md, checked on every #include.

Each top-level directory (and each folder under injectors/ and targets/) is
one library. A header belongs to the library whose include/ holds it; a file
may include headers of its own library and of the libraries it may depend on.
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = (".cpp", ".h")

# What each library may include besides itself (transitively closed by hand,
# so the table reads as the rule: "engine on schema" also lets it use common).
BASE = {"common": set()}
BASE["schema"] = {"common"}
BASE["reference"] = {"common"}
BASE["refmount"] = {"reference", "common"}
BASE["engine"] = {"schema", "common"}
BASE["platform"] = {"engine", "schema", "common"}
BASE["analysis"] = {"schema", "common"}
BASE["report"] = {"schema", "common"}
BASE["apps"] = {"platform", "engine", "schema", "common"}
INJECTOR = {"platform", "engine", "schema", "common"}
TARGET = {"engine", "schema", "common", "platform"}


def libraries(root=ROOT):
    libs = set(BASE) | {"cli", "bench"}
    for group in ("injectors", "targets"):
        if (root / group).is_dir():
            libs |= {f"{group}/{d.name}" for d in (root / group).iterdir() if d.is_dir()}
    return libs


def allowed(lib, root=ROOT):
    if lib in BASE:
        return BASE[lib]
    if lib.startswith("injectors/"):
        return INJECTOR
    if lib.startswith("targets/"):
        # Targets use the injectors and, for reference:, the reference library.
        extra = {d for d in libraries(root) if d.startswith("injectors/")} | {"apps"}
        if lib == "targets/reference":
            extra.add("reference")
        if lib == "targets/refmount":  # the mount's control client, and the model's capabilities
            extra |= {"refmount", "reference"}
        return TARGET | extra
    if lib == "bench":
        return {"reference", "common"}
    if lib == "cli":
        return libraries(root) - {"cli", "bench"}
    raise AssertionError(f"no layering rule for {lib}")


def header_owners(root):
    owners = {}
    for lib in libraries(root):
        for inc in (root / lib).rglob("include"):
            for h in inc.rglob("*.h"):
                owners[str(h.relative_to(inc))] = lib
    return owners


# "syncprobe/x.h", "private.h", "../src/x.h", and <syncprobe/x.h> (the
# project's headers may be included either way).
INCLUDE = re.compile(r'^\s*#\s*include\s+(?:"([^"]+)"|<(syncprobe/[^>]+)>)', re.M)


def library_of(path, root):
    """The library a file lies in, or None (outside every library)."""
    try:
        parts = path.resolve().relative_to(root.resolve()).parts
    except ValueError:
        return None
    libs = libraries(root)
    for n in (2, 1):
        if "/".join(parts[:n]) in libs:
            return "/".join(parts[:n])
    return None


def violations(root=ROOT):
    owners = header_owners(root)
    broken = []
    for lib in sorted(libraries(root)):
        for f in (root / lib).rglob("*"):
            if f.suffix not in SOURCES:
                continue
            for quoted, angled in INCLUDE.findall(f.read_text(errors="replace")):
                inc = quoted or angled
                owner = owners.get(inc)
                if owner is None and quoted and (f.parent / inc).exists():
                    # A header by its path: beside the source (reference/src/fiu_points.h)
                    # or reached with ../ — it belongs to the library it lies in.
                    owner = library_of(f.parent / inc, root)
                    if owner is None:
                        broken.append(f"{f.relative_to(root)}: {inc} lies outside every library")
                        continue
                if owner is None:
                    broken.append(f"{f.relative_to(root)}: unknown header {inc}")
                    continue
                if owner != lib and owner not in allowed(lib, root):
                    broken.append(f"{f.relative_to(root)}: {inc} belongs to {owner}")
    return broken


KNOWN = set()  # exceptions being removed, each with its issue


def test_every_include_follows_the_layering():
    broken = [b for b in violations() if b not in KNOWN]
    assert not broken, "layering broken (docs/design.md):\n  " + "\n  ".join(broken)


def test_the_table_covers_every_library():
    for lib in libraries():
        allowed(lib)  # raises for a library without a rule
    assert {"targets/reference", "targets/host", "targets/vm", "injectors/dm"} <= libraries()


def test_the_checker_catches_violations(tmp_path):
    def header(lib, name):
        p = tmp_path / lib / "include" / "syncprobe" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#pragma once\n")

    def source(lib, text):
        p = tmp_path / lib / "src" / "x.cpp"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    header("engine", "target.h")
    header("cli", "commands.h")
    header("targets/host", "host_target.h")
    header("targets/vm", "vm_target.h")
    source("report", '#include "syncprobe/target.h"\n')           # report on engine
    source("engine", '#include "syncprobe/commands.h"\n')         # anything on cli
    source("targets/vm", '#include "syncprobe/host_target.h"\n')  # a target on another
    source("cli", '#include "syncprobe/vm_target.h"\n')           # fine
    # The same rules for <syncprobe/...> and for a header reached by its path.
    (tmp_path / "analysis" / "src").mkdir(parents=True)
    (tmp_path / "analysis" / "src" / "y.cpp").write_text("#include <syncprobe/target.h>\n")
    (tmp_path / "targets" / "host" / "src").mkdir(parents=True)
    (tmp_path / "targets" / "host" / "src" / "private.h").write_text("#pragma once\n")
    (tmp_path / "targets" / "vm" / "src" / "y.cpp").write_text('#include "../../host/src/private.h"\n')
    (tmp_path / "targets" / "vm" / "src" / "z.cpp").write_text('#include "../src/x.cpp"\n')  # its own: fine
    found = "\n".join(violations(tmp_path))
    assert "analysis/src/y.cpp: syncprobe/target.h belongs to engine" in found
    assert "targets/vm/src/y.cpp: ../../host/src/private.h belongs to targets/host" in found
    assert "targets/vm/src/z.cpp" not in found
    assert "report/src/x.cpp: syncprobe/target.h belongs to engine" in found
    assert "engine/src/x.cpp: syncprobe/commands.h belongs to cli" in found
    assert "targets/vm/src/x.cpp: syncprobe/host_target.h belongs to targets/host" in found
    assert "cli/" not in found


MAX_LINES = 500  # ../STYLE: a file with one job reads in one sitting


def long_files(root=ROOT):
    """Source files of the libraries (tests and benchmarks aside) over MAX_LINES."""
    found = []
    for lib in sorted(libraries(root)):
        if lib == "bench":
            continue
        for f in sorted((root / lib).rglob("*")):
            if f.suffix not in SOURCES or "test" in f.relative_to(root / lib).parts:
                continue
            n = len(f.read_text(errors="replace").splitlines())
            if n > MAX_LINES:
                found.append(f"{f.relative_to(root)}: {n} lines")
    return found


def test_no_source_file_has_more_than_500_lines():
    long = long_files()
    assert not long, "split these by job (docs/design.md):\n  " + "\n  ".join(long)


def test_the_length_check_sees_a_long_file(tmp_path):
    (tmp_path / "engine" / "src").mkdir(parents=True)
    (tmp_path / "engine" / "src" / "big.cpp").write_text("x\n" * (MAX_LINES + 1))
    (tmp_path / "engine" / "test").mkdir(parents=True)
    (tmp_path / "engine" / "test" / "big_test.cpp").write_text("x\n" * (MAX_LINES + 1))
    assert long_files(tmp_path) == [f"engine/src/big.cpp: {MAX_LINES + 1} lines"]
