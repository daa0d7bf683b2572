"""The engine's shape: it imports no framework, names no backend, and every worker-side module imports only
the standard library and numpy."""

import ast
import subprocess
import sys

from conftest import BACKENDS, ROOT, rosetta

ENGINE_MODULES = ("rosetta", "rosetta.cli", "rosetta.registry", "rosetta.runner", "rosetta.report", "rosetta.envs",
                  "rosetta.worker.cell", "rosetta.results", "rosetta.judge", "rosetta.plan", "rosetta.runs",
                  "rosetta.compare", "rosetta.check", "rosetta.doctor", "rosetta.executors.local", "tasks.classifier")


def framework_modules() -> list[str]:
    reference = [b for b in BACKENDS.values() if b.reference]
    return sorted({m for b in BACKENDS.values() if b not in reference for m in b.framework_modules} | {"optax"})


def test_importing_the_engine_imports_no_framework():
    code = (
        f"import sys, importlib\nfor m in {ENGINE_MODULES!r}: importlib.import_module(m)\n"
        "import rosetta.registry\nrosetta.registry.discover()\n"
        f"loaded = sorted(m for m in {framework_modules()!r} if m in sys.modules)\n"
        "print(','.join(loaded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def _strings(path):
    """The string constants of a module's code: docstrings and comments are prose, everything else is code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
                docstrings.add(id(node.body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_backend_name_in_the_engine_or_the_task_specs():
    """What a framework does is declared by its backend; the engine and the specs only read declarations, so a
    plugin backend is a first-class citizen, ordered and judged like a built-in. A string in the code of
    rosetta/ or tasks/ that IS a backend's, variant's or framework's name (a key, a comparison, an order) is a
    framework fact in the wrong place. (Prose that mentions a framework, and numpy the array library every
    framework bridges to, are not names of a backend.)"""
    names = set()
    for backend in BACKENDS.values():
        names |= {backend.name, backend.display_name, *backend.variants}
    found = []
    for path in sorted([*(ROOT / "rosetta").rglob("*.py"), *(ROOT / "tasks").glob("*.py")]):
        for line, text in _strings(path):
            hits = sorted(n for n in names if text.strip() == n)
            if hits:
                found.append(f"{path.relative_to(ROOT)}:{line}: {text[:80]!r} names {', '.join(hits)}")
    assert not found, "\n".join(found)


def test_worker_side_modules_import_only_the_standard_library_and_numpy():
    allowed = set(sys.stdlib_module_names) | {"numpy", "rosetta", "tasks"}
    for path in sorted((ROOT / "rosetta" / "worker").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                assert top in allowed, f"{path.relative_to(ROOT)} imports {name}"
                if top == "rosetta":
                    assert name.startswith("rosetta.worker"), f"{path.relative_to(ROOT)} imports {name} (the engine)"


def test_list_names_tasks_backends_variants_and_install_state():
    result = rosetta("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "classifier" in out and "manual-sgd" in out and "adadelta" in out
    assert "numpy: installed" in out and "(the reference)" in out
    assert "variant torch (default)" in out
    assert "cntk" in out and "not runnable" in out
    assert "--data-dir" in out  # a task's own options are listed with it
    for line in out.splitlines():
        if "not installed" in line:
            assert "rosetta setup" in line
