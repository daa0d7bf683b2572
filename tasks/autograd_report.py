"""autograd in the reports: the seeds' checks in every framework (one column each), what repeated backward
does in each, and the gradient check in float64 against float32 (table and plot), with its lesson."""

from __future__ import annotations

import html
import math
import statistics

from rosetta.report.sections import Section, figure_png, pyplot, table


def _columns(records: list[dict]) -> dict:
    """column header -> record, for the ok records with checks (in the registry's order of backends); the
    header names the variant, precision or device only where records of one framework differ in them."""
    ran = [r for r in records if r.get("status") == "ok" and (r.get("report_data") or {}).get("checks")]
    varies = [key for key in ("variant", "precision", "device") if len({r.get(key) for r in ran}) > 1]
    columns = {}
    for r in ran:
        name = r.get("framework") or r.get("backend")
        extra = [str(r.get(key)) for key in varies if not (key == "variant" and r.get("variant") == r.get("backend"))]
        columns[f"{name} ({', '.join(extra)})" if extra else name] = r
    return columns


def _cell(row: dict) -> str:
    status = row.get("status", "")
    if status == "n/a":
        return "—"
    if status == "ok":
        return f"✓ {row.get('short') or 'ok'}"
    return f"✗ {row.get('short') + ': ' if row.get('short') else ''}{status}"


def checks_section(columns: dict, view) -> Section:
    records = view.records
    first = next(iter(columns.values()))["report_data"]["checks"]
    rows = []
    for i, check in enumerate(first):
        row = {"check": check["title"], "the seed": check["seed"]}
        for header, record in columns.items():
            checks = {c["check"]: c for c in record["report_data"]["checks"]}
            row[header] = _cell(checks[check["check"]]) if check["check"] in checks else ""
        rows.append(row)
    html_table, md_table = table(rows, ["check", "the seed", *columns])
    lines = ["✓: the framework's result is the seed's (values to the run's precision; repeated backward: the "
             "framework's documented behaviour); ✗: it is not, and why; —: not written for that framework "
             "(a compiled loop: only where a function is compiled, tf.function and jax.jit)."]
    seen = set()
    for r in records:  # the frameworks that did not run the checks, and why (a deliberate refusal says it)
        backend = r.get("backend")
        if r.get("status") != "ok" and r.get("status") is not None and backend not in seen:
            seen.add(backend)
            lines.append(f"{r.get('framework') or backend}: {r.get('verdict', r.get('status'))}")
    notes = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return Section("Autograd: the seeds' examples in every framework", html_table + notes,
                   md_table + "\n\n" + "\n\n".join(lines))


def accumulation_section(columns: dict) -> Section:
    rows = []
    for header, record in columns.items():
        data = record["report_data"]
        check = next((c for c in data["checks"] if c["check"] == "accumulate"), {})
        model = data.get("accumulation_model") or {}
        rows.append({"framework": header, "observed x.grad after backward 1, 2, 3": check.get("observed", ""),
                     "matches the documented model": "yes" if check.get("status") == "ok" else check.get("status"),
                     "what the framework does": model.get("words", "(no documented model recorded)")})
    html_table, md_table = table(rows)
    lead = ("Course 1: calling backward() again adds into x.grad (1, 2, 3). Where gradients are stored on the "
            "tensors (PyTorch, PaddlePaddle, MXNet with grad_req='add') they accumulate, which is why training "
            "loops zero them every step; where gradients are return values (TensorFlow's tape, JAX's grad) "
            "every call gives the gradient alone, and accumulating means adding the results yourself.")
    return Section("Autograd: repeated backward, accumulate or not",
                   f"<p>{html.escape(lead)}</p>" + html_table, lead + "\n\n" + md_table)


def _gradcheck_rows(columns: dict) -> list[tuple[str, dict, float]]:
    """(column header, gradient-check result, the eps its pass conditions used) per record that has one."""
    return [(header, r["report_data"]["gradient_check"], r["report_data"].get("headline_eps", 1e-6))
            for header, r in columns.items() if r["report_data"].get("gradient_check")]


def gradient_check_section(columns: dict) -> Section | None:
    checks = _gradcheck_rows(columns)
    if not checks:
        return None
    epsilons = sorted({row["eps"] for _, g, _ in checks for row in g["rows"]}, reverse=True)
    rows = []
    for header, g, _ in checks:
        for precision in ("float64", "float32"):
            by_eps = {row["eps"]: row for row in g["rows"] if row["precision"] == precision}
            row = {"framework": header, "precision": precision}
            for eps in epsilons:
                found = by_eps.get(eps)
                row[f"eps {eps:.0e}"] = (f"{found['norm_rel_error']:.1e}" if found else "")
            if precision == "float32":
                row["float32 autograd vs float64"] = f"{g['analytic_float32_vs_float64']['norm_rel_error']:.1e}"
            rows.append(row)
    html_table, md_table = table(rows)
    caption = _lesson(checks, checks[0][2])
    parameters, samples = checks[0][1].get("parameters"), checks[0][1].get("samples")
    intro = (f"Each framework's autograd gradients of a 5 → 7 tanh → 3 softmax cross-entropy network "
             f"({parameters} parameters, {samples} samples) against central differences "
             f"(L(p + eps) − L(p − eps)) / 2 eps of its own loss, in float64 and in float32. Cells: the norm-wise "
             f"relative error ‖g − g_fd‖ / (‖g‖ + ‖g_fd‖) over all parameters (the plot adds the largest "
             f"entry-wise one, |g − g_fd| / (|g| + |g_fd|)); the last column, the same measure between the float32 "
             f"and the float64 autograd gradients.")
    figure = _plot(checks)
    return Section("Autograd: the gradient check, float64 against float32",
                   f"<p>{html.escape(intro)}</p>{html_table}{figure}<p>{html.escape(caption)}</p>",
                   f"{intro}\n\n{md_table}\n\n{caption}")


def _lesson(checks, eps: float) -> str:
    def median_at(precision, key, at=None):
        """The median over frameworks of key at eps `at`, or of its smallest value over eps (at=None)."""
        values = []
        for _, g, _ in checks:
            rows = [row for row in g["rows"] if row["precision"] == precision]
            if at is None:
                values.append(min(row[key] for row in rows))
            else:
                values += [row[key] for row in rows if row["eps"] == at]
        return statistics.median(values) if values else math.nan

    def best_eps(precision):
        return statistics.median(min((row for row in g["rows"] if row["precision"] == precision),
                                     key=lambda row: row["norm_rel_error"])["eps"] for _, g, _ in checks)

    analytic = statistics.median(g["analytic_float32_vs_float64"]["norm_rel_error"] for _, g, _ in checks)
    worst32 = median_at("float32", "max_rel_error", eps)
    text = (f"The lesson (seed 002: the gradient \"checks rather well when using double precision, but checks very "
            f"poorly when using single precision\"): as eps shrinks, the finite-difference error falls "
            f"(truncation, ~eps²) until the rounding of the two losses takes over (~u·|L|/eps; u = 1.1e-16 in "
            f"float64, 6e-8 in float32). Medians over the frameworks: at eps {eps:g} the norm-wise error is "
            f"{median_at('float64', 'norm_rel_error', eps):.1e} in float64 and "
            f"{median_at('float32', 'norm_rel_error', eps):.1e} in float32 (the largest entry-wise: "
            f"{median_at('float64', 'max_rel_error', eps):.1e} and {worst32:.1e}"
            f"{', some float32 entries entirely wrong' if worst32 > 0.5 else ''}); at its best eps "
            f"({best_eps('float64'):g}) float64 reaches {median_at('float64', 'norm_rel_error'):.1e}, float32 at its "
            f"own ({best_eps('float32'):g}) only {median_at('float32', 'norm_rel_error'):.1e}. ")
    if analytic < 1e-5:
        text += (f"Yet the float32 autograd gradients differ from the float64 ones by only {analytic:.1e} (norm-wise): "
                 f"the float32 gradient is right, its finite differences are what fails. ")
    return text + "A gradient check therefore runs in double precision."


def _plot(checks) -> str:
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    colors = {"float64": "tab:blue", "float32": "tab:orange"}
    markers = "os^vDPX*<>"
    for i, (header, g, _) in enumerate(checks):
        for precision in ("float64", "float32"):
            rows = sorted((row for row in g["rows"] if row["precision"] == precision), key=lambda row: row["eps"])
            eps = [row["eps"] for row in rows]
            for ax, key in zip(axes, ("max_rel_error", "norm_rel_error")):
                ax.loglog(eps, [max(row[key], 1e-17) for row in rows], color=colors[precision],
                          marker=markers[i % len(markers)], alpha=0.75, linewidth=1,
                          label=f"{header} {precision}")
    for ax, title in zip(axes, ("largest entry-wise relative error", "norm-wise relative error")):
        ax.set_xlabel("finite-difference step eps")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("|autograd − finite differences| (relative)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=7, ncol=min(len(labels), 6), loc="lower center",
                  bbox_to_anchor=(0.5, -0.02 - 0.045 * math.ceil(len(labels) / 6)))
    figure.suptitle("Gradient check: float64 (blue) against float32 (orange), per framework")
    return figure_png(figure, alt="relative error of the gradient check against eps, float64 and float32")


def sections(view) -> list[Section]:
    columns = _columns(view.records)
    if not columns:
        return []
    found = [checks_section(columns, view), accumulation_section(columns), gradient_check_section(columns)]
    return [s for s in found if s is not None]
