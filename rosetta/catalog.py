"""What the registry holds, as text: `rosetta list`'s listing, and the Markdown tables that docs/backends.md
embeds (`rosetta list --markdown`), so that no backend table in the docs is written by hand."""

from __future__ import annotations

from rosetta import envs
from rosetta.registry import Registry

BEGIN = "<!-- begin: rosetta list --markdown -->"
END = "<!-- end: rosetta list --markdown -->"


def listing(registry: Registry) -> list[str]:
    lines = ["tasks:"]
    for task in registry.tasks.values():
        lines.append(f"  {task.name:12s} {task.summary}" + ("" if task.origin == "built-in" else f" ({task.origin})"))
        lines.append(f"  {'':12s} recipes: {', '.join(task.recipes)}"
                     + (f"; options: {', '.join(o.flag for o in task.options.values())}" if task.options else ""))
    lines.append("\nbackends:")
    for backend in registry.backends.values():
        if backend.problem:
            lines.append(f"  {backend.name:12s} {backend.display_name}: {backend.problem}")
            continue
        state = ("installed" if envs.is_installed(backend)
                 else f"not installed (run `{envs.install_hint(backend)}`)")
        where = ("shared environment" if backend.environment == "shared"
                 else f"own environment {backend.environment}")
        lines.append(f"  {backend.name:12s} {backend.display_name}: {state}; {where}; "
                     f"tasks: {', '.join(_tasks(registry, backend)) or 'none'}"
                     + (" (the reference)" if backend.reference else "")
                     + ("" if backend.origin == "built-in" else f"; {backend.origin}"))
        for i, (variant, description) in enumerate(backend.variants.items()):
            lines.append(f"  {'':12s}   variant {variant}{' (default)' if i == 0 else ''}: {description}")
    return lines


def markdown(registry: Registry) -> str:
    """The backends, their variants and their declared differences, as Markdown tables (built-ins only: the
    docs describe this repository, whatever plugins the machine that generates them has installed)."""
    backends = [b for b in registry.backends.values() if b.origin == "built-in"]
    out = [BEGIN, "", "| backend | framework | environment | GPU | float64 | tasks | variants |", "|---|---|---|---|---|---|---|"]
    for b in backends:
        if b.problem:
            out.append(f"| {b.name} | {b.display_name} | | | | | {_cell(b.problem)} |")
            continue
        variants = "<br>".join(f"`{v}`: {_cell(d)}" for v, d in b.variants.items())
        out.append(f"| {b.name} | {b.display_name} | {_where(b)} | {'yes' if b.supports_gpu else 'no'} | "
                   f"{'yes' if b.supports_float64 else 'no'} | {', '.join(_tasks(registry, b))} | {variants} |")
    absent = [(b, task, why) for b in backends for task, why in b.does_not_implement.items()]
    if absent:
        out += ["", "Tasks a framework deliberately does not implement:", "", "| backend | task | why |", "|---|---|---|"]
        out += [f"| {b.name} | {task} | {_cell(why)} |" for b, task, why in absent]
    declared = [(b, d) for b in backends for d in b.declared_differences]
    if declared:
        out += ["", "Declared differences from the reference (rosetta/judge.py judges a deviation inside the band as "
                "`differs (declared)`):", "", "| backend | task | recipes | precisions | variants | band | why |",
                "|---|---|---|---|---|---|---|"]
        for b, d in declared:
            low, high = d.get("band", (None, None))
            out.append(f"| {b.name} | {d['task']} | {_many(d.get('recipes', '*'))} | {_many(d.get('precisions', '*'))} | "
                       f"{_many(d.get('variants', '*'))} | {low:.1e} .. {high:.1e} | {_cell(d.get('why', ''))} |")
    out += ["", END]
    return "\n".join(out) + "\n"


def embedded(text: str) -> str | None:
    """The generated part of a page, markers included, or None where it has none."""
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN):text.index(END) + len(END)] + "\n"


def update(text: str, registry: Registry) -> str:
    current = embedded(text)
    if current is None:
        raise ValueError(f"the page has no {BEGIN} ... {END} markers")
    return text.replace(current, markdown(registry))


def _tasks(registry: Registry, backend) -> list[str]:
    return [t.name for t in registry.tasks.values() if backend.has_module(t)]


def _where(backend) -> str:
    return "shared" if backend.environment == "shared" else f".envs/{backend.environment}"


def _many(value) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
