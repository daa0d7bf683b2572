"""`rosetta check --backend NAME`: the conformance check of a backend under development.

Plain functions, callable from a notebook: `report = check_backend(name)`, then `report.lines()`,
`report.failures()` and `report.exit_code`. What it checks, in order (each failure says what to fix):

1. the adapter (backends/<name>/__init__.py, or a plugin's package) against the contract documented in
   rosetta/backend.py: what it needs outside Python (SYSTEM_REQUIREMENTS), the required constants, variants named with the backend's prefix and unique,
   requirements.txt beside it, and, in the backend's own environment (rosetta/check_probe.py): importing
   the adapter loads no framework, every contract function exists and answers, from_numpy / to_numpy
   keep dtype, shape and values (rosetta/worker/check_probe.py);
2. per task: implemented or not; the task module imports neither rosetta nor another backend's framework
   and defines the function the task asks for;
3. per task, variant and recipe, a tiny cell through the real worker (runner.run_cell, float64 where
   the backend has it): does it run (or the error, and where), does it return what the task asks for,
   and does its curve agree with the reference's, judged by rosetta/judge.py as every report judges it (or
   by how much, from which step, and what that suggests).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rosetta import envs, judge, runner
from rosetta.backend import FUNCTIONS, REQUIRED, Backend
from rosetta.errors import UsageError
from rosetta.plan import Cell
from rosetta.registry import ROOT, Registry, discover

CHECK_STEPS = 20
CONTRACT = "rosetta/backend.py (the contract) and docs/adding-a-backend.md (the guide)"
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

def check_backend(name: str, tasks: list[str] | None = None, steps: int = CHECK_STEPS, progress=None,
                  registry: Registry | None = None) -> CheckReport:
    """Check one backend; raises UsageError for an unknown backend or task (the CLI's exit code 2). The registry
    is discovered when not given (the CLI passes the one it discovered once)."""
    registry = registry if registry is not None else discover()
    backends = registry.backends
    if name not in backends:
        by_variant = {v: b.name for b in backends.values() for v in b.variants}
        hint = f" (a variant of {by_variant[name]!r}: check the backend)" if name in by_variant else ""
        raise UsageError(f"unknown backend {name!r}{hint}; known backends: {', '.join(backends)}")
    tasks = [registry.task(t).name for t in tasks] if tasks else list(registry.tasks)
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
    usable = check_system(report, backend) and check_adapter(report, backend, registry, tasks)
    for task in tasks:
        check_task(report, backend, registry, task, steps, usable, say)
    return report


def check_system(report: CheckReport, backend: Backend) -> bool:
    """What the framework needs outside Python, tested first: without it, everything after fails obscurely."""
    missing = envs.missing_system_requirements(backend)
    for requirement, fix in missing:
        report.add("adapter", f"system requirement {envs.requirement_name(requirement)}", "fail",
                   f"not found: {requirement.get('why', 'the framework needs it')}", fix)
    if backend.system_requirements and not missing:
        report.add("adapter", "system requirements", "pass",
                   ", ".join(envs.requirement_name(r) for r in backend.system_requirements))
    return not missing


# ------------------------------------------------------------------------------------------ adapter

def check_adapter(report: CheckReport, backend: Backend, registry: Registry, tasks: list[str]) -> bool:
    """The contract checks; True when the adapter is good enough for its tasks to be run."""
    backends = registry.backends
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
    # the reference's module (numpy) is every environment's, not "another framework"
    reference = registry.reference
    every_environment = set(reference.framework_modules) if reference and reference is not backend else set()
    others = sorted({m for b in backends.values() if b is not backend and b is not reference
                     for m in b.framework_modules} - set(backend.framework_modules))
    own = sorted(set(backend.framework_modules) - every_environment)
    modules = [backend.module_for(registry.task(t))[0] for t in tasks if backend.has_module(registry.task(t))]
    found = run_probe(backend, python, others, own, modules)
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
        add("constants", "pass", ", ".join(REQUIRED))
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

def check_task(report: CheckReport, backend, registry: Registry, task_name: str, steps: int, usable: bool,
               say) -> None:
    task = registry.task(task_name)
    found = backend.module_for(task)
    spec_file = _shown(Path(task.path)) if task.path else task.module_name
    expected = f"{_shown(backend.path)}/{task.file_stem}.py" if backend.path else f"{backend.module}.{task.file_stem}"
    where = _shown(found[1]) if found else expected
    add = lambda *a, **k: report.add(task_name, *a, **k)  # noqa: E731
    if task_name in backend.does_not_implement:
        add("implemented", "skip", f"deliberately not: {_short(backend.does_not_implement[task_name])}")
        return
    if found is None:
        add("implemented", "skip", f"no {expected}", f"to implement it, write {expected} (see {spec_file})")
        return
    add("implemented", "pass", where)

    module_name, source = found
    imports_rosetta = _imports(source, "rosetta")
    if imports_rosetta is None:
        add("parses", "fail", f"{where} is not valid Python", f"fix the syntax error in {where}")
    elif imports_rosetta:
        add("task module imports no rosetta", "fail", f"line {imports_rosetta}: imports rosetta",
            f"remove the rosetta import from {where}: a task module uses its framework, numpy and "
            f"{task.module_name} only (the report shows it as the framework's code)")
    else:
        add("task module imports no rosetta", "pass")
    if not usable:
        add("runs", "skip", "the adapter must pass first")
        return
    probe = getattr(report, "_probe", {}).get("tasks", {}).get(module_name, {})
    if "import_error" in probe:
        error = probe["import_error"]
        missing = re.match(r"ModuleNotFoundError: No module named '([^'.]+)", error["message"])
        fix = (f"`{missing[1]}` is not installed in {backend.name}'s environment: add it to "
               f"{backend.name}'s requirements.txt and run `rosetta setup {backend.name}`" if missing
               else f"fix the import error in {where}")
        add("imports", "fail", f"{error['message']} at {_shown_where(error['where'])}", fix, trace=error["traceback"])
        return
    if probe.get("loaded"):
        add("imports no other framework", "fail", f"importing it loaded {', '.join(probe['loaded'])}",
            f"remove those imports from {where}: each backend uses its own framework only")
    else:
        add("imports no other framework", "pass")
    missing = [f for f in task.backend_functions if f not in probe.get("functions", [])] if probe else []
    if missing:
        add(f"defines {missing[0]}()", "fail", f"{where} lacks {', '.join(missing)}",
            f"define {', '.join(missing)} in {where} (see {spec_file})")
        return
    try:
        options = task.locate_data({})
    except UsageError as error:
        add("runs", "skip", f"{task_name} needs its data set: {error}")
        return

    precision = "float64" if backend.supports_float64 else "float32"
    size = task.check_size or _tiny_size(task, steps)
    steps = steps if task.training else None
    axes = {name: (option.baseline if option.baseline is not None else (option.default or (1,))[-1])
            for name, option in task.options.items() if option.axis}
    reference = registry.reference
    reference_records = {}
    for recipe in task.recipes:
        if reference is not None and backend is not reference:
            say(f"running {reference.name} {recipe} (the reference)")
            reference_records[recipe] = runner.run_cell(
                _cell(task, reference, reference.default_variant, recipe, precision, size, steps, options, axes),
                reference, task, timeout=CELL_TIMEOUT_S)
    for variant in backend.variants_for(task_name):
        for recipe in task.recipes:
            say(f"running {variant} {recipe}")
            cell = _cell(task, backend, variant, recipe, precision, size, steps, options, axes)
            record = runner.run_cell(cell, backend, task, timeout=CELL_TIMEOUT_S)
            judge_cell(report, backend, task, cell, record, reference_records.get(recipe), where,
                       reference.name if reference else None)


def _cell(task, backend, variant, recipe, precision, size, steps, options, axes) -> Cell:
    return Cell(task.name, backend.name, variant, "cpu", recipe, precision, size, 0, steps,
                options=tuple(sorted(options.items())), axes=tuple(axes.items()))


def judge_cell(report, backend, task, cell, record, reference_record, where, reference_name) -> None:
    steps = f", {cell.steps} steps" if cell.steps is not None else ""
    scope = f"{cell.task}/{cell.variant}/{cell.recipe} ({cell.precision}, size {cell.size}{steps})"
    add = lambda *a, **k: report.add(scope, *a, **k)  # noqa: E731
    flags = (f" --steps {cell.steps}" if cell.steps is not None else "") + "".join(
        f" --{name.replace('_', '-')} {value}" for name, value in cell.option_values.items())
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
    reference = reference_name or "the reference"
    if status == "diverged":
        add("runs", "fail", record["verdict"], f"the loss became NaN or infinite: compare the update with "
            f"{reference}'s at that step")
        return
    if status == "skipped":  # the backend's own reason (tasks.protocol.CannotRun): not a failure
        add("runs", "skip", record.get("verdict", status))
        return
    if status != "ok":
        add("runs", "fail", record.get("verdict", status), f"run {rerun}")
        return
    if "losses" not in record:  # a task of checks: its verdict says which check failed
        add("runs", "pass", f"in {record.get('run_s', 0):.1f} s")
        verdict = record.get("verdict")
        add(f"matches the {reference} reference", "pass" if verdict == "ok" else "fail", verdict,
            "" if verdict == "ok" else f"see {_shown(Path(task.path)) if task.path else task.module_name} for what "
                                         f"each check expects, and the same check in {reference}'s module")
        return
    add("runs", "pass", f"{len(record['losses'])} losses, {record.get('step_median_s', 0) * 1e3:.2f} ms a step")
    verdict = record.get("verdict")
    if verdict != "ok":
        add("returns what the task asks", "fail", verdict, _fix_for_verdict(verdict, task, where))
        return
    add("returns what the task asks", "pass", "the losses and results of the right shapes")
    if reference_record is None:
        return
    if reference_record.get("status") != "ok":
        add(f"agrees with {reference}", "skip", f"the reference did not run: {reference_record.get('verdict')}")
        return
    j = judge.judge(record, reference_record, task, reference_name)
    report_judgement(add, j, backend, record, reference_record, task, reference)


def report_judgement(add, j, backend, record, reference_record, task, reference) -> None:
    """The judge's verdict as a check: what it means for the backend's author and what to do next."""
    check = f"agrees with {reference}"
    if j is None or j.verdict == judge.REFERENCE:
        return
    if j.verdict == judge.NO_VERDICT:
        add(check, "fail" if j.head is None else "pass", f"no verdict: {j.why}",
            "train() must yield one loss per step (problem.steps of them)")
        return
    figures = f"max relative deviation {j.head:.1e} over {j.steps} steps (whole run {j.whole:.1e})"
    if j.verdict == judge.AGREES:
        add(check, "pass", f"{figures} <= {j.tolerance:g}")
        return
    if j.verdict == judge.DECLARED:
        add(check, "pass", f"{figures}, within its declared band {j.band[0]:.1e} to {j.band[1]:.1e}: {_short(j.why)}")
        return
    if j.verdict == judge.CLOSER:
        add(check, "warn", f"{figures}, closer than the declared band {j.band[0]:.1e} to {j.band[1]:.1e}: has the "
            f"framework changed? Measure again and update (or remove) its entry in DECLARED_DIFFERENCES")
        return
    mine, theirs = judge.series(record, task), judge.series(reference_record, task)
    first = j.first_step or 0
    where_it_parts = f"from step {first} (value {mine[first]:.17g}, {reference} {theirs[first]:.17g})"
    if j.verdict == judge.DIFFERS_AT_START:
        fix = ("the first loss already differs, before any update ran: the forward pass, the loss or the starting "
               "weights differ (start from problem.params, mind (in, out) vs (out, in) layouts, use the mean over "
               "the batch), or the loss was read after the optimizer's step; no declared difference about an "
               "update rule excuses this")
    elif j.band is not None:
        fix = (f"the deviation is above the band its declaration allows ({j.band[0]:.1e} to {j.band[1]:.1e}): a new "
               f"difference on top of the declared one; compare the update with {reference}'s step by step")
    else:
        fix = ("the first losses agree, then the curves part: the gradient or the update differs (learning rate "
               "and its schedule from problem.learning_rate(i), the recipe's hyper-parameters from "
               "problem.recipe.hyper, mean vs sum of the batch's losses); if the framework's rule genuinely "
               "differs, declare it in DECLARED_DIFFERENCES with its reason and measured band (rosetta/backend.py)")
    add(check, "fail", f"{j.verdict}: {figures} > {j.tolerance:g}, {where_it_parts}", fix)


# ------------------------------------------------------------------------------------------- helpers

def run_probe(backend, python: Path, other_frameworks: list[str], own_frameworks: list[str],
              task_modules: list[str]) -> dict:
    from rosetta.worker.check_probe import MARK

    spec = {"module": backend.module, "path": str(backend.path) if backend.path else None,
            "required": list(REQUIRED), "functions": list(FUNCTIONS), "other_frameworks": other_frameworks,
            "own_frameworks": own_frameworks,
            "float64": backend.supports_float64, "task_modules": task_modules}
    env = envs.worker_environment(backend, backend.default_variant if backend.variants else "", "cpu", None)
    try:
        done = subprocess.run([str(python), "-m", "rosetta.worker.check_probe", json.dumps(spec)], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"probe_error": {"message": f"the probe did not finish in {PROBE_TIMEOUT_S} s", "where": "",
                                "traceback": ""}}
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        return {"probe_error": {"message": f"the probe ended with code {done.returncode} and no answer",
                                "where": "", "traceback": (done.stderr or done.stdout)[-3000:]}}
    return json.loads(lines[-1][len(MARK):])


def _tiny_size(task, steps: int) -> int:
    """The smallest of a few sizes on which every recipe of the task can run."""
    for size in (1000, 2000, 5000, 10_000, 20_000):
        try:
            for recipe in task.recipes:
                task.validate(size, recipe, steps)
        except UsageError:
            continue
        return size
    return task.default_size


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


def _fix_for_verdict(verdict: str, task, where: str) -> str:
    spec = _shown(Path(task.path)) if task.path else task.module_name
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
    return where.replace(str(ROOT) + "/", "")


def _shown(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return str(path)


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
