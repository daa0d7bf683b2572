"""The perceptron task's own report sections: the parameter norm of every backend step by step, a table of
norms, costs and per-step times (each against numpy's: at this size, each framework's per-operation
overhead), and the answer to the course's exercise, "check that the norm of the parameters converge to
zero", stated from the runs' data."""

from __future__ import annotations

import html

import numpy as np

from rosetta.report.sections import Section, figure_png, pyplot, table

COLUMNS = ["framework", "variant", "device", "precision", "steps", "initial norm", "final norm", "norm change %",
           "norm floor", "final cost", "mean cost, last 100", "step us"]
SAME_STEP = ("precision", "recipe", "size", "seed", "steps")


def _ok(records):
    return [r for r in records if r.get("status") == "ok" and (r.get("report_data") or {}).get("param_norms")]


def _reference_step(view, records, record):
    """The reference's median step for the same problem (it runs on the CPU: a GPU row is compared with it)."""
    for r in records:
        if view.is_reference(r) and all(r.get(k) == record.get(k) for k in SAME_STEP):
            return r.get("step_median_s")
    return None


def rows_of(view, records):
    rows = []
    ratio = f"x {view.reference_name}"
    for r in records:
        m, reference_step = r.get("metrics") or {}, _reference_step(view, records, r)
        step = r.get("step_median_s")
        rows.append({
            "framework": r.get("framework") or r.get("backend"), "variant": r.get("variant"),
            "device": r.get("device"), "precision": r.get("precision"), "steps": r.get("steps"),
            "initial norm": m.get("initial_param_norm"), "final norm": m.get("final_param_norm"),
            "norm change %": None if m.get("norm_change") is None else 100 * m["norm_change"],
            "norm floor": m.get("norm_floor"), "final cost": m.get("final_cost"),
            "mean cost, last 100": m.get("mean_cost_last_100"),
            "step us": None if step is None else 1e6 * step,
            ratio: step / reference_step if step and reference_step else None,
        })
    return rows


def answer(view, records) -> str:
    """One sentence answering the exercise, from the reference's run or else the first run."""
    reference = next((r for r in records if view.is_reference(r)), records[0])
    m = reference.get("metrics") or {}
    start, end, floor = m.get("initial_param_norm"), m.get("final_param_norm"), m.get("norm_floor")
    if None in (start, end, floor):
        return "The runs do not hold the norms needed to answer."
    who = f"{reference.get('framework') or reference.get('backend')}, {reference.get('precision')}"
    steps = reference.get("steps")
    if m.get("norm_converges_to_zero"):
        return (f"Yes: over {steps} steps ({who}) the parameter norm fell from {start:.4g} to {end:.4g}, "
                f"below 1/1000 of where it started.")
    direction = "fell" if end < start else "rose"
    return (f"No: over {steps} steps ({who}) the parameter norm {direction} from {start:.4g} to {end:.4g} "
            f"({100 * (end / start - 1):+.2f} %), and it can never go below {floor:.4g}: the gradient of "
            f"(sum z)^2 with respect to theta2 and bias2 is a multiple of the all-ones output direction, so "
            f"their parts orthogonal to it, of norm {floor:.4g}, never change. Gradient descent drives the "
            f"sum of the outputs towards zero (mean cost {m.get('mean_cost_first_100', float('nan')):.3g} over "
            f"the first 100 steps, {m.get('mean_cost_last_100', float('nan')):.3g} over the last 100), not "
            f"the parameters.")


def figure(records):
    plt = pyplot()
    from matplotlib import ticker
    precisions = sorted({r["precision"] for r in records})
    fig, axes = plt.subplots(1, len(precisions), figsize=(6.5 * len(precisions), 4), squeeze=False)
    for ax, precision in zip(axes[0], precisions):
        floors = []
        for r in (r for r in records if r["precision"] == precision):
            data = r["report_data"]
            norms = np.asarray(data["param_norms"], dtype=np.float64)
            steps = np.arange(1, len(norms) + 1) * data.get("norms_every", 1)
            label = f"{r.get('variant')}" + (f" ({r['device']})" if r.get("device") != "cpu" else "")
            ax.plot(steps, norms, label=label, linewidth=1)
            if data.get("norm_floor") is not None:
                floors.append(data["norm_floor"])
        if floors:
            ax.axhline(floors[0], color="black", linestyle="--", linewidth=1,
                       label="floor: theta2, bias2 off the all-ones direction")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(ticker.ScalarFormatter())
        ax.set_xlabel("step")
        ax.set_ylabel("parameter norm (after the step)")
        ax.set_title(f"parameter norm per step, {precision}")
        ax.legend(fontsize=7, loc="center right", ncol=2 if len(ax.get_lines()) > 8 else 1)
    return fig


def sections(view) -> list[Section]:
    ok = _ok(view.records)
    if not ok:
        return []
    image = figure_png(figure(ok), alt="parameter norm per step, every backend")
    rows = rows_of(view, ok)
    table_html, table_md = table(rows, COLUMNS + [f"x {view.reference_name}"])
    sentence = answer(view, ok)
    legend = ("norm: the L2 norm of all parameters concatenated, after the step's update, computed by the "
              "framework; floor: the norm of theta2 and bias2 projected off the all-ones direction, which no "
              "step changes. step us: median time of one step (forward, backward, update, norm, cost read "
              f"back; Keras' leaves the norm out, see its note) in microseconds; x {view.reference_name}: that "
              f"time over {view.reference_name}'s for the same problem. At 1,728 parameters and one sample a "
              "step, the arithmetic is negligible: this is each framework's per-operation overhead.")
    return [
        Section("Does the parameter norm converge to zero?",
                f"<p>{html.escape(sentence)}</p>{image}",
                f"{sentence}\n\n(The plot of the parameter norm per step is in report.html.)"),
        Section("Parameter norm, cost and per-step time",
                f"<p class='muted'>{html.escape(legend)}</p>{table_html}",
                f"{legend}\n\n{table_md}"),
    ]
