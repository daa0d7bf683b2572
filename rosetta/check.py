"""`rosetta check --backend NAME`: the conformance check of a backend under development.

Plain functions, callable from a notebook: `report = check_backend("paddle")`, then `report.lines()`,
`report.failures()` and `report.exit_code`. What it checks, in order (each failure says what to fix):

1. the adapter (backends/<name>/__init__.py, or a plugin's package) against the contract documented in
   rosetta/registry.py: the required constants, variants named with the backend's prefix and unique,
   requirements.txt beside it, and, in the backend's own environment (rosetta/check_probe.py): importing
   the adapter loads no framework, every contract function exists and answers, from_numpy / to_numpy
   keep dtype, shape and values;
2. per task: implemented or not; the task module imports neither rosetta nor another backend's framework
   and defines the function the task asks for;
3. per task, variant and recipe, a tiny cell through the real worker (runner.run_cell, float64 where
   the backend has it): does it run (or the error, and where), does it return what the task asks for,
   and does its loss curve agree with numpy's (or by how much, from which step, and what that suggests).
"""

from __future__ import annotations

import ast
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rosetta import envs, registry, runner
from rosetta.errors import UsageError

CHECK_STEPS = 20
# A genuine, documented difference of update rule (Result.notes) may move the curve this far; the
# backend tests use the same bound.
DOCUMENTED_DIFFERENCE_BOUND = 1e-3
CONTRACT = "rosetta/registry.py (the contract) and docs/adding-a-backend.md (the guide)"
PROBE_TIMEOUT_S = 300
CELL_TIMEOUT_S = 300


@dataclass
class Finding:
    scope: str  # "adapter", a task name, or "task/variant/recipe"
    check: str
    status: str  # "pass", "fail", "warn" (reported, not failed), "skip"
    detail: str = ""
    fix: str = ""
    trace: str = ""


@dataclass
class CheckReport:
    backend: str
    header: str = ""
    findings: list = field(default_factory=list)

    def add(self, *args, **kwargs) -> Finding:
        finding = Finding(*args, **kwargs)
        self.findings.append(finding)
        return finding

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures() else 0

    def lines(self, verbose: bool = False) -> list[str]:
        out = [self.header] if self.header else []
        scope, traces = None, set()
        for f in self.findings:
            if f.scope != scope:
                scope = f.scope
                out.append(f"\n{scope}")
            out.append(f"  {f.status.upper():5s} {f.check}" + (f": {f.detail}" if f.detail else ""))
            if f.status == "fail" and f.fix:
                out.append(f"        fix: {f.fix}")
            if f.trace and (verbose or f.status == "fail"):
                if f.trace in traces:
                    out.append("        (the same traceback as above)")
                else:
                    traces.add(f.trace)
                    out += [f"        | {line}" for line in f.trace.rstrip().splitlines()[-8:]]
        counts = {s: sum(f.status == s for f in self.findings) for s in ("pass", "fail", "warn", "skip")}
        out.append(f"\n{counts['pass']} passed, {counts['fail']} failed"
                   + (f", {counts['warn']} warnings" if counts["warn"] else "")
                   + (f", {counts['skip']} skipped" if counts["skip"] else ""))
        failures = self.failures()
        if failures:
            out.append("fix next, in this order:")
            grouped: dict = {}  # the same fix for several cells is one item
            for f in failures:
                grouped.setdefault((f.check, f.fix or f.detail), []).append(f.scope)
            for i, ((check, fix), scopes) in enumerate(grouped.items(), 1):
                more = f" (also {', '.join(s.split(' (')[0] for s in scopes[1:])})" if len(scopes) > 1 else ""
                out.append(f"  {i}. [{scopes[0]}] {check}: {fix}{more}")
        else:
            out.append(f"{self.backend} conforms: every check passed")
        return out


# -------------------------------------------------------------------------------------------- entry

def check_backend(name: str, tasks: list[str] | None = None, steps: int = CHECK_STEPS,
                  backends: dict | None = None, progress=None) -> CheckReport:
    """Check one backend; raises UsageError for an unknown backend or task (the CLI's exit code 2)."""
    backends = registry.discover() if backends is None else backends
    if name not in backends:
        by_variant = {v: b.name for b in backends.values() for v in b.variants}
        hint = f" (a variant of {by_variant[name]!r}: check the backend)" if name in by_variant else ""
        raise UsageError(f"unknown backend {name!r}{hint}; known backends: {', '.join(backends)}")
    for task in tasks or []:
        if task not in registry.TASKS:
            raise UsageError(f"unknown task {task!r}; known tasks: {', '.join(registry.TASKS)}")
    tasks = list(tasks or registry.TASKS)
    say = progress or (lambda message: None)
    backend = backends[name]
    report = CheckReport(name)
    report.header = (f"rosetta check: backend {name} ({backend.display_name}), {backend.origin}, "
                     f"module {backend.module or '-'}"
                     + (f" at {_shown(backend.path)}" if backend.path else ""))

    if backend.origin == "retired":
        report.add("adapter", "runnable", "fail", backend.problem, "nothing to fix here: the framework is retired")
        return report
    say("checking the adapter")
    usable = check_adapter(report, backend, backends, tasks)
    for task in tasks:
        check_task(report, backend, backends, task, steps, usable, say)
    return report


# ------------------------------------------------------------------------------------------ adapter

def check_adapter(report: CheckReport, backend: registry.Backend, backends: dict, tasks: list[str]) -> bool:
    """The contract checks; True when the adapter is good enough for its tasks to be run."""
    add = lambda *a, **k: report.add("adapter", *a, **k)  # noqa: E731
    init = f"{_shown(backend.path)}/__init__.py" if backend.path else f"the package {backend.module}"
    if backend.problem is None:
        add("loads", "pass", f"{backend.module}")

    # Names: unique, variants prefixed with the backend's name.
    if backend.problem is None:
        bad = [v for v in backend.variants if not v.startswith(backend.name)]
        if not backend.variants:
            add("variants", "fail", "VARIANTS is empty", f"name at least one variant in {init}, e.g. "
                f"VARIANTS = {{{backend.name!r}: 'what it runs'}}")
        elif bad:
            add("variants named with the backend's prefix", "fail", f"{', '.join(bad)} do not start with "
                f"{backend.name!r}", f"rename them in VARIANTS in {init}, e.g. {backend.name}-{bad[0]}")
        else:
            add("variants named with the backend's prefix", "pass", ", ".join(backend.variants))
        clashes = sorted({v for other in backends.values() if other is not backend for v in other.variants}
                         & set(backend.variants))
        if clashes:
            add("variant names unique", "fail", f"{', '.join(clashes)} also belong to another backend",
                f"rename them in VARIANTS in {init}")
        if backend.environment != "shared" and not backend.environment.replace("-", "").replace("_", "").isalnum():
            add("ENVIRONMENT", "fail", f"{backend.environment!r} is not a plain name",
                f"set ENVIRONMENT to 'shared' or to a plain name such as {backend.name!r} in {init}")

    # requirements.txt
    if backend.path is not None:
        requirements = backend.path / "requirements.txt"
        if not requirements.exists():
            add("requirements.txt", "fail", f"{_shown(requirements)} does not exist",
                f"create {_shown(requirements)}: the pip requirements `rosetta setup {backend.name}` installs, "
                "pinned (e.g. framework==1.2.3)" + ("; a plugin ships it as package data" if backend.origin != "built-in" else ""))
        else:
            add("requirements.txt", "pass", _shown(requirements))

    # In the backend's environment: import side effects, functions, conversions.
    python = envs.interpreter(backend) if backend.problem is None else Path(__import__("sys").executable)
    if backend.problem is None and not envs.is_installed(backend):
        add("installed", "fail", f"{backend.import_name} is not importable by {python}",
            f"run `rosetta setup {backend.name}`")
        return False
    others = sorted({b.import_name for b in backends.values() if b.import_name and b is not backend} - {"numpy"})
    found = run_probe(backend, python, others, [registry.task_module_name(t) for t in tasks if backend.implements(t)])
    if "probe_error" in found or "adapter_error" in found:
        error = found.get("adapter_error") or found["probe_error"]
        add("loads", "fail", f"{error['message']} at {_shown_where(error['where'])}",
            f"fix the import error in {init} (try `{python} -c 'import {backend.module}'`)", trace=error["traceback"])
        return False
    if backend.problem and not found.get("missing_attributes"):
        add("loads", "fail", backend.problem, f"make `import {backend.module}` work in the engine's environment "
            f"(see {CONTRACT})")
    if found.get("adapter_loaded"):
        loaded = ", ".join(found["adapter_loaded"])
        add("adapter imports no framework", "fail", f"importing {backend.module} loaded {loaded}",
            f"move `import {found['adapter_loaded'][0]}` from the top of {init} into the functions that need it "
            "(version(), gpu_name(), ...): the engine imports every adapter and must stay framework-free")
    else:
        add("adapter imports no framework", "pass")
    missing = found.get("missing_attributes") or []
    if missing:
        add("constants", "fail", f"{init} lacks {', '.join(missing)}",
            f"define {', '.join(missing)} in {init} (see {CONTRACT}), e.g. "
            + "; ".join(f"{a} = {EXAMPLES.get(a, '...')}" for a in missing))
    elif not missing:
        add("constants", "pass", ", ".join(registry.REQUIRED_ATTRIBUTES))
    if found.get("missing_functions"):
        add("functions", "fail", f"missing {', '.join(found['missing_functions'])}",
            f"define {', '.join(f + '()' for f in found['missing_functions'])} in {init}; each imports the "
            f"framework inside its body (see {CONTRACT})")
    if "framework_error" in found:
        error = found["framework_error"]
        add("framework imports", "fail", f"import {backend.import_name or '?'}: {error['message']}",
            f"run `rosetta setup --force {backend.name}`, or fix IMPORT_NAME in {init}", trace=error["traceback"])
        return False
    if "calls" not in found:
        return False
    add("framework imports", "pass", f"{backend.import_name} in {found['framework_import_s']:.2f} s, "
                                     f"Python {found['python']} at {found['executable']}")
    expected = {"version": ("str",), "gpu_name": ("str", "NoneType"), "peak_device_memory": ("int", "NoneType"),
                "synchronize": None, "set_threads": None}
    bad_calls = []
    for name, answer in found["calls"].items():
        if "error" in answer:
            bad_calls.append(name)
            add(f"{name}()", "fail", f"raised {answer['error']['message']} at {_shown_where(answer['error']['where'])}",
                f"fix {name}() in {init}", trace=answer["error"]["traceback"])
        elif expected.get(name) and answer["type"] not in expected[name]:
            bad_calls.append(name)
            add(f"{name}()", "fail", f"returned a {answer['type']} ({answer['value']!r})",
                f"{name}() must return {' or '.join(t.replace('NoneType', 'None') for t in expected[name])}")
    if not bad_calls and found["calls"]:
        shown = {n: a["value"] for n, a in found["calls"].items() if n in ("version", "gpu_name")}
        add("functions answer", "pass", ", ".join(f"{n}() -> {v!r}" for n, v in shown.items())
            + ", synchronize('cpu'), set_threads(1), peak_device_memory('cpu')")
    trip = found.get("round_trip") or {}
    problems = {dtype: r for dtype, r in trip.items() if r}
    merged: dict = {}  # the same problem for several dtypes is one finding
    for dtype, result in problems.items():
        key = result["error"]["message"] if "error" in result else result["problem"]
        merged.setdefault(key, (result, []))[1].append(dtype)
    for key, (result, dtypes) in merged.items():
        if "error" in result:
            add(f"numpy round trip ({', '.join(dtypes)})", "fail", f"raised {key} at "
                f"{_shown_where(result['error']['where'])}", f"fix from_numpy()/to_numpy() in {init}",
                trace=result["error"]["traceback"])
        else:
            add(f"numpy round trip ({', '.join(dtypes)})", "fail", key,
                f"from_numpy(array, device) must keep the array's dtype (pass it explicitly) and to_numpy(x) "
                f"must return a numpy array: fix them in {init}")
    if trip and not problems:
        add("numpy round trip", "pass", "from_numpy then to_numpy keep " + ", ".join(trip) + " exactly")
    report._probe = found  # noqa: SLF001 (the task checks read the task modules' part)
    return backend.problem is None


# --------------------------------------------------------------------------------------------- tasks

def check_task(report: CheckReport, backend, backends, task: str, steps: int, usable: bool, say) -> None:
    module_name = registry.task_module_name(task)
    spec = registry.load_task(task)
    where = f"{_shown(backend.path)}/{module_name}.py" if backend.path else f"{backend.module}.{module_name}"
    add = lambda *a, **k: report.add(task, *a, **k)  # noqa: E731
    if backend.path is None or not backend.implements(task):
        add("implemented", "skip", f"no {where}", f"to implement it, write {where} (see tasks/{module_name}.py)")
        return
    add("implemented", "pass", where)

    source = backend.path / f"{module_name}.py"
    imports_rosetta = _imports(source, "rosetta")
    if imports_rosetta is None:
        add("parses", "fail", f"{where} is not valid Python", f"fix the syntax error in {where}")
    elif imports_rosetta:
        add("task module imports no rosetta", "fail", f"line {imports_rosetta}: imports rosetta",
            f"remove the rosetta import from {where}: a task module uses its framework, numpy and "
            f"tasks.{module_name} only (the report shows it as the framework's code)")
    else:
        add("task module imports no rosetta", "pass")
    if not usable:
        add("runs", "skip", "the adapter must pass first")
        return
    probe = getattr(report, "_probe", {}).get("tasks", {}).get(module_name, {})
    if "import_error" in probe:
        error = probe["import_error"]
        add("imports", "fail", f"{error['message']} at {_shown_where(error['where'])}", f"fix the import error in {where}",
            trace=error["traceback"])
        return
    if probe.get("loaded"):
        add("imports no other framework", "fail", f"importing it loaded {', '.join(probe['loaded'])}",
            f"remove those imports from {where}: each backend uses its own framework only")
    else:
        add("imports no other framework", "pass")
    training = not hasattr(spec, "run_backend")
    required = getattr(spec, "BACKEND_FUNCTIONS", ("train",) if training else ())
    missing = [f for f in required if f not in probe.get("functions", [])] if probe else []
    if missing:
        add(f"defines {missing[0]}()", "fail", f"{where} lacks {', '.join(missing)}",
            f"define {', '.join(missing)} in {where} (see tasks/{module_name}.py)")
        return
    options = {}
    if "data_dir" in runner.accepted_options(spec):
        from rosetta.data import locate_cifar10
        try:
            options["data_dir"] = str(locate_cifar10(None))
        except UsageError as error:
            add("runs", "skip", f"{task} needs its data set: {error}")
            return

    precision = "float64" if backend.supports_float64 else "float32"
    size = getattr(spec, "CHECK_SIZE", None) or _tiny_size(spec, steps)
    steps = steps if training else None
    tolerance = getattr(spec, "AGREEMENT_TOLERANCE", {}).get(precision, 1e-12)
    first_steps = getattr(spec, "AGREEMENT_STEPS", steps)
    reference = backends.get("numpy")
    numpy_records = {}
    for recipe in spec.RECIPES:
        if reference is not None and backend.name != "numpy":
            say(f"running numpy {recipe} (the reference)")
            numpy_records[recipe] = runner.run_cell(runner.Cell(task, "numpy", "numpy", "cpu", recipe, precision,
                                                                size, 0, steps, **options), reference,
                                                    timeout=CELL_TIMEOUT_S)
    for variant in [v for v in backend.variants if backend.implements(task, v)]:
        for recipe in spec.RECIPES:
            say(f"running {variant} {recipe}")
            cell = runner.Cell(task, backend.name, variant, "cpu", recipe, precision, size, 0, steps, **options)
            record = runner.run_cell(cell, backend, timeout=CELL_TIMEOUT_S)
            judge_cell(report, backend, cell, record, numpy_records.get(recipe), tolerance, first_steps, where)


def judge_cell(report, backend, cell, record, numpy_record, tolerance, first_steps, where) -> None:
    from rosetta.report import relative_deviation, series

    steps = f", {cell.steps} steps" if cell.steps is not None else ""
    scope = f"{cell.task}/{cell.variant}/{cell.recipe} ({cell.precision}, size {cell.size}{steps})"
    add = lambda *a, **k: report.add(scope, *a, **k)  # noqa: E731
    flags = (f" --steps {cell.steps}" if cell.steps is not None else "") + \
        (f" --data-dir {cell.data_dir}" if cell.data_dir else "")
    rerun = (f"`rosetta run --task {cell.task} --backend {cell.variant} "
             f"--precision {cell.precision} --size {cell.size}{flags} --device cpu`")
    status = record.get("status")
    if status == "failed":
        error = record.get("error") or ""
        location = _where(error, backend.path)
        add("runs", "fail", record["verdict"].removeprefix("failed: ") + (f" at {location}" if location else ""),
            f"fix what {location.split(' in ')[0] if location else where} raises (traceback below; the same "
            f"cell alone: {rerun})", trace=error or record.get("stderr_tail", ""))
        return
    if status in ("crashed", "timed-out"):
        add("runs", "fail", record["verdict"], f"the worker {status.replace('-', ' ')}: see its last output below, "
            f"or run {rerun}", trace=record.get("stderr_tail", ""))
        return
    if status == "diverged":
        add("runs", "fail", record["verdict"], "the loss became NaN or infinite: compare the update with numpy's "
            "(backends/numpy/) at that step")
        return
    if status != "ok":
        add("runs", "fail", record.get("verdict", status), f"run {rerun}")
        return
    if "losses" not in record:  # a task of checks: its verdict says which check failed
        add("runs", "pass", f"in {record.get('run_s', 0):.1f} s")
        verdict = record.get("verdict")
        add("matches the numpy reference", "pass" if verdict == "ok" else "fail", verdict,
            "" if verdict == "ok" else f"see tasks/{registry.task_module_name(cell.task)}.py for what each check "
                                         f"expects, and the same check in backends/numpy/")
        return
    add("runs", "pass", f"{len(record['losses'])} losses, {record.get('step_median_s', 0) * 1e3:.2f} ms a step")
    verdict = record.get("verdict")
    if verdict != "ok":
        add("returns what the task asks", "fail", verdict, _fix_for_verdict(verdict, cell.task, where))
        return
    add("returns what the task asks", "pass", "the losses and results of the right shapes")
    if numpy_record is None:
        return
    if numpy_record.get("status") != "ok":
        add("agrees with numpy", "skip", f"the numpy reference did not run: {numpy_record.get('verdict')}")
        return
    deviation = relative_deviation(series(record), series(numpy_record))[:first_steps]
    worst = float(deviation.max())
    notes = record.get("notes") or []
    known = backend.known_deviations.get(cell.variant) if cell.precision == "float64" else None
    if worst <= tolerance:
        if known:
            add("agrees with numpy", "warn", f"max relative deviation {worst:.1e}, although KNOWN_DEVIATIONS "
                f"says it should not: remove its entry for {cell.variant}")
        else:
            add("agrees with numpy", "pass", f"max relative deviation {worst:.1e} <= {tolerance:g}")
        return
    if known:
        add("agrees with numpy", "warn", f"max relative deviation {worst:.1e}, expected (KNOWN_DEVIATIONS): "
            f"{_short(known)}")
        return
    if notes and worst <= DOCUMENTED_DIFFERENCE_BOUND:
        add("agrees with numpy", "pass", f"max relative deviation {worst:.1e}, a documented difference: "
            + _short(notes[0]))
        return
    first = int((deviation > tolerance).argmax())
    ours, theirs = series(record)[first], series(numpy_record)[first]
    hint = ("the first loss already differs: the forward pass, the loss or the starting weights differ "
            "(start from problem.params, mind (in, out) vs (out, in) layouts, and use the mean over the batch)"
            if first == 0 else
            "the first losses agree, then the curves part: the gradient or the update differs (learning rate "
            "and its schedule from problem.learning_rate(i), the recipe's hyper-parameters from "
            "problem.recipe.hyper, mean vs sum of the batch's losses)")
    fix = hint + (f"; if {backend.display_name}'s rule genuinely differs, say so in Result.notes "
                  f"(then up to {DOCUMENTED_DIFFERENCE_BOUND:g} passes)" if not notes else
                  f"; the notes ({_short(notes[0])}) do not cover a deviation above {DOCUMENTED_DIFFERENCE_BOUND:g}")
    add("agrees with numpy", "fail", f"max relative deviation {worst:.1e} > {tolerance:g}, from step {first} "
        f"(loss {ours:.17g}, numpy {theirs:.17g})", fix)


# ------------------------------------------------------------------------------------------- helpers

def run_probe(backend, python: Path, other_frameworks: list[str], task_modules: list[str]) -> dict:
    from rosetta.check_probe import MARK

    spec = {"module": backend.module, "path": str(backend.path) if backend.path else None,
            "required": list(registry.REQUIRED_ATTRIBUTES), "other_frameworks": other_frameworks,
            "float64": backend.supports_float64, "task_modules": task_modules}
    env = envs.worker_environment(backend, backend.default_variant if backend.variants else "", "cpu", None)
    try:
        done = subprocess.run([str(python), "-m", "rosetta.check_probe", json.dumps(spec)], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"probe_error": {"message": f"the probe did not finish in {PROBE_TIMEOUT_S} s", "where": "",
                                "traceback": ""}}
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        return {"probe_error": {"message": f"the probe ended with code {done.returncode} and no answer",
                                "where": "", "traceback": (done.stderr or done.stdout)[-3000:]}}
    return json.loads(lines[-1][len(MARK):])


def _tiny_size(spec, steps: int) -> int:
    """The smallest of a few sizes on which every recipe of the task can run."""
    for size in (1000, 2000, 5000, 10_000, 20_000):
        try:
            for recipe in spec.RECIPES:
                spec.validate(size, recipe, steps)
        except ValueError:
            continue
        return size
    return spec.DEFAULT_SIZE


def _imports(path: Path, package: str):
    """The line of the first import of `package` in the file, 0 when none, None when it does not parse."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        if any(n == package or n.startswith(package + ".") for n in names):
            return node.lineno
    return 0


def _where(traceback_text: str, path: Path | None) -> str:
    """The deepest 'File "...", line N, in f' of a traceback that lies in the backend's folder."""
    if path is None:
        return ""
    lines = traceback_text.splitlines()
    found = ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith('File "') and str(path) in stripped:
            file = stripped.split('"')[1]
            rest = stripped.split('", line ', 1)[1]
            number, _, function = rest.partition(", in ")
            code = lines[i + 1].strip() if i + 1 < len(lines) and not lines[i + 1].strip().startswith("File") else ""
            found = f"{_shown(Path(file))}:{number} in {function}" + (f": {code}" if code else "")
    return found


def _fix_for_verdict(verdict: str, task: str, where: str) -> str:
    spec = f"tasks/{registry.task_module_name(task)}.py"
    if "losses for" in verdict:
        return f"train() must yield one loss per step (problem.steps of them), or a list per chunk of steps ({spec})"
    if "parameter" in verdict:
        return (f"return Result.params in the spec's layout, the shapes of problem.params ({spec}); a framework "
                "that stores weights as (out, in) transposes them back")
    if "logits" in verdict:
        return f"return Result.val_logits as (len(problem.x_val), classes), scores before softmax ({spec})"
    return f"see what {spec} asks train() to return, and fix {where}"


EXAMPLES = {"NAME": "'myframework'", "DISPLAY_NAME": "'MyFramework'", "IMPORT_NAME": "'myframework'",
            "ENVIRONMENT": "'shared'", "VARIANTS": "{'myframework': 'eager'}", "SUPPORTS_GPU": "False",
            "SUPPORTS_FLOAT64": "True"}


def _shown_where(where: str) -> str:
    return where.replace(str(registry.ROOT) + "/", "")


def _shown(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(Path(path).relative_to(registry.ROOT))
    except ValueError:
        return str(path)


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
