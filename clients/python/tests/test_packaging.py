"""The client as a package: it installs with pip and works from the installed copy, it keeps to
Python 3.9 syntax, and importing it pulls in nothing outside the standard library."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List

import pytest

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent  # clients/python
SRC = PROJECT / "src" / "logd"
VECTORS = Path(os.environ.get("LOGD_VECTORS") or HERE.parents[2] / "vectors" / "wire-v1")

NETWORK_ERRORS = (
    "No matching distribution found for setuptools",
    "Could not find a version that satisfies the requirement setuptools",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


def can_build_offline() -> bool:
    """Whether pip can build the wheel with what is installed (``--no-build-isolation``):
    setuptools, plus ``wheel`` for setuptools older than 70.1 (which lacks bdist_wheel)."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    if importlib.util.find_spec("wheel") is not None:
        return True
    try:
        import setuptools
        major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    except Exception:
        return False
    return (major, minor) >= (70, 1)


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """``pip install --no-deps --target <tmp>`` of a copy of clients/python (so that the
    build's build/ and *.egg-info never land in the source tree)."""
    base = Path(tempfile.mkdtemp(prefix="logd-pkg-"))
    try:
        source = base / "source"
        shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "*.pyc"))
        target = base / "target"
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input",
               "--disable-pip-version-check", "--target", str(target)]
        if can_build_offline():
            cmd.append("--no-build-isolation")
        cmd.append(str(source))
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(base),
                              timeout=600)
        out = done.stdout.decode("utf-8", "replace")
        if done.returncode != 0 and "--no-build-isolation" not in cmd and any(e in out for e in NETWORK_ERRORS):
            pytest.skip("building needs setuptools from the network (no wheel package installed): " + out[-500:])
        assert done.returncode == 0, out
        yield target
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_installed(target: Path, code: str) -> str:
    """Runs ``code`` with cwd=target and PYTHONPATH=target only; returns its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(target)
    env.pop("LOGD_SOCKET", None)
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=str(target), env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    return done.stdout.decode("utf-8")


def test_pip_install_gives_a_working_typed_package(installed):
    out = run_installed(installed, "import json, logd; print(json.dumps([logd.__file__, logd.__version__]))")
    path, version = json.loads(out)
    assert Path(path).resolve() == (installed / "logd" / "__init__.py").resolve()
    assert version == "0.1.0"
    assert (installed / "logd" / "py.typed").is_file()
    # Every module of the source tree was installed.
    assert {p.name for p in SRC.glob("*.py")} <= {p.name for p in (installed / "logd").glob("*.py")}
    # The distribution's metadata agrees with logd.__version__.
    [dist] = list(installed.glob("logd-*.dist-info"))
    metadata = (dist / "METADATA").read_text(encoding="utf-8")
    assert "Name: logd\n" in metadata and ("Version: %s\n" % version) in metadata
    requires = [l for l in metadata.split("\n\n")[0].splitlines() if l.startswith("Requires-Dist:")]
    assert all("extra ==" in l for l in requires), requires  # no runtime dependencies, only extras


def test_installed_copy_encodes_the_golden_metric_vector(installed):
    expected = (VECTORS / "metric.bin").read_bytes()
    doc = json.loads((VECTORS / "metric.json").read_text(encoding="utf-8"))
    [rec] = doc["records"]
    code = ("import logd, logd.wire as w; assert w.__file__.startswith(%r); "
            "print(w.metric(%d, %d, %d, %r).hex()); "
            "print(b''.join(w.encode_record(r) for r in w.decode_frames(bytes.fromhex(%r))).hex())"
            % (str(installed), rec["key_id"], rec["step"], rec["timestamp"], rec["value"], expected.hex()))
    encoded, roundtrip = run_installed(installed, code).split()
    assert bytes.fromhex(encoded) == expected
    assert bytes.fromhex(roundtrip) == expected


def source_modules() -> List[Path]:
    return sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", source_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_parses_as_python_3_9(path):
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))


def test_every_module_is_checked():
    assert {str(p.relative_to(SRC)) for p in source_modules()} >= {
        "__init__.py", "api.py", "run.py", "wire/__init__.py", "wire/_protocol.py", "wire/_values.py",
        "wire/_frames.py", "wire/_decoder.py", "control.py", "logging_handler.py", "tensorboard.py",
        "torch_helpers.py", "_buffer.py", "_process.py", "_sender.py"}


@pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="sys.stdlib_module_names needs Python 3.10")
def test_import_logd_pulls_in_only_the_standard_library():
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import logd, logd.control, logd.wire\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print(json.dumps({'file': logd.__file__, 'new': new, 'stdlib': sorted(sys.stdlib_module_names)}))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC.parent)
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    out = json.loads(done.stdout)
    assert Path(out["file"]).resolve() == (SRC / "__init__.py").resolve()
    new = out["new"]
    assert "logd" in new and "logd.run" in new
    for heavy in ("torch", "numpy", "yaml", "tensorboardX", "tensorboard"):
        assert heavy not in new
    stdlib = set(out["stdlib"])
    third_party = sorted(m for m in new if m.split(".")[0] not in stdlib and m.split(".")[0] != "logd")
    assert third_party == []


def _imports_of(path: Path) -> set:
    """The logd modules a source file imports with relative imports, anywhere in it (lazy imports
    inside functions count too), as dotted names below the package (``run``, ``wire._values``)."""
    package = list(path.relative_to(SRC).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = package[: len(package) - (node.level - 1)]
        if node.module:
            out.add(".".join(base + [node.module.split(".")[0]]))
        else:
            out.update(".".join(base + [a.name]) for a in node.names)
    return out


def test_no_import_circle_between_modules():
    modules = {}
    for path in source_modules():
        rel = path.relative_to(SRC).with_suffix("")
        name = ".".join(rel.parts[:-1]) if rel.name == "__init__" else ".".join(rel.parts)
        modules[name] = path
    graph = {m: {i for i in _imports_of(p) if i in modules and i != m} for m, p in modules.items()}
    # The package __init__ files import their members by design; circles among the rest are bugs.
    graph = {m: {i for i in deps if "." in i or modules[i].name != "__init__.py"} for m, deps in graph.items()
             if modules[m].name != "__init__.py"}
    assert "run" in graph["api"], "the check sees imports (api.py imports run.py)"
    assert "api" not in graph["run"], "run.py must not import api.py"
    seen, stack = set(), []

    def visit(m):
        if m in stack:
            raise AssertionError("import circle: " + " -> ".join(stack[stack.index(m):] + [m]))
        if m in seen:
            return
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            visit(d)
        stack.pop()
        seen.add(m)

    for m in sorted(graph):
        visit(m)
