"""tensor-ops in the reports: the seed's numpy-vs-PyTorch table extended to every framework (the cells are
the code that ran), the numpy bridge and in-place addition as measured, device transfer, and the throughput
of each framework's CPU (or GPU) kernels."""

from __future__ import annotations

import html
import math

from rosetta.report.sections import Section, figure_png, pyplot, table

# The seed's own rows for the bridge and the GPU transfer (its table stops at arange; its text goes on).
SEED_ROWS = {
    "from_numpy": ("numpy → framework", "-", "torch.from_numpy(numpy_array)"),
    "to_numpy": ("framework → numpy", "-", "torch_array.numpy()"),
    "transfer": ("To a GPU and back", "-", "a.cuda() … z.cpu()"),
}
BENCHMARK_LABELS = {
    "matmul": "matmul n×n @ n×n", "add": "elementwise add", "max_axis": "max along an axis",
    "copy_in": "numpy array → framework (copy)", "to_gpu": "host → GPU", "to_cpu": "GPU → host",
}
MARK = {"mismatch": "✗", "error": "✗", "missing": "✗"}


def _column(record: dict) -> str:
    """A framework's column header: its name, the variant when not the default, what it ran on (Keras' backend)."""
    name = record.get("framework") or record["backend"]
    extra = [record["variant"]] if record.get("variant") not in (None, record["backend"]) else []
    about = (record.get("report_data") or {}).get("about") or {}
    extra += [f"{value} {key}" for key, value in about.items()]
    return f"{name} ({', '.join(extra)})" if extra else name


def _columns(records: list[dict]) -> dict:
    """column header -> the ok records of that framework/variant, in the report's order (the reference first)."""
    columns: dict = {}
    for r in records:
        if r.get("status") == "ok" and (r.get("report_data") or {}).get("ops"):
            columns.setdefault(_column(r), []).append(r)
    return columns


def _where(r: dict) -> str:
    return f"{r.get('precision')}, {r.get('device')}"


def _code(text: str, markdown: bool) -> str:
    return f"`{text}`" if markdown and text else text


def op_table(columns: dict) -> Section:
    """Rows: the seed's commands; columns: the seed's numpy and PyTorch 0.4, then every framework's code."""
    footnotes: list[str] = []

    def footnote(text: str) -> str:
        if text not in footnotes:
            footnotes.append(text)
        return f"[{footnotes.index(text) + 1}]"

    first = next(iter(columns.values()))[0]["report_data"]
    order = [(o["op"], o["label"], o.get("seed_numpy", ""), o.get("seed_torch", "")) for o in first["ops"]]
    order += [(op, *SEED_ROWS[op]) for op in ("from_numpy", "to_numpy", "transfer")]
    tables = {}
    for markdown in (False, True):
        rows = []
        for op, label, seed_numpy, seed_torch in order:
            row = {"command": label, "numpy (seed)": _code(seed_numpy, markdown),
                   "PyTorch 0.4 (seed)": _code(seed_torch, markdown)}
            for header, recs in columns.items():
                row[header] = _cell(op, header, recs, markdown, footnote)
            rows.append(row)
        tables[markdown] = table(rows, ["command", "numpy (seed)", "PyTorch 0.4 (seed)", *columns])
    notes = "".join(f"<li>[{i + 1}] {html.escape(n)}</li>" for i, n in enumerate(footnotes))
    md_notes = "\n".join(f"{i + 1}. {n}" for i, n in enumerate(footnotes))
    intro = ("Each cell is the body of the framework's function in backends/&lt;name&gt;/tensor_ops.py, the code "
             "that ran; every result was compared with numpy's (✗: it differed, see the note). "
             "The first columns are the seed's own commands (PyTorch 0.4.1, 2018).")
    return Section("The seed's table in every framework",
                   f"<p>{intro}</p>{tables[False][0]}<ol class='notes'>{notes}</ol>" if footnotes else
                   f"<p>{intro}</p>{tables[False][0]}",
                   intro.replace("&lt;", "<").replace("&gt;", ">") + "\n\n" + tables[True][1]
                   + ("\n\n" + md_notes if footnotes else ""))


def _find(record: dict, op: str) -> dict:
    data = record["report_data"]
    if op == "transfer":
        return data.get("transfer") or {}
    for row in data.get("ops", []) + data.get("bridge", []):
        if row.get("op") == op:
            return row
    return {}


def _cell(op: str, header: str, records: list[dict], markdown: bool, footnote) -> str:
    rows = [(r, _find(r, op)) for r in records]
    rows = [(r, row) for r, row in rows if row]
    if not rows:
        return ""
    expression = next((row["expression"] for _, row in rows if row.get("expression")), "")
    text = _code(expression, markdown)
    marks = []
    for r, row in rows:
        status = row.get("status")
        if status in MARK:
            marks.append(f"{MARK[status]} " + footnote(f"{header}, {row.get('label', op)} ({_where(r)}): {status}: "
                                                      f"{row.get('detail') or row.get('finding') or ''}"))
    status = rows[0][1].get("status")
    if status == "not available":
        return "— " + footnote(f"{header}, {rows[0][1].get('label', op)}: {rows[0][1].get('detail')}")
    if status == "skipped" and all(row.get("status") == "skipped" for _, row in rows):
        text += " " + footnote("not run: no GPU visible to the framework (see Device transfer)")
    note = rows[0][1].get("note")
    if note:
        text += " " + footnote(f"{header}, {rows[0][1].get('label', op)}: {note}")
    return " ".join([text, *dict.fromkeys(marks)]).strip()


def memory_table(columns: dict) -> Section:
    rows = []
    for header, records in columns.items():
        # one row per framework, unless its runs (precisions, devices) found different things
        distinct = list({_memory_key(r): r for r in records}.values())
        for r in distinct:
            data = r["report_data"]
            bridge = {row["op"]: row for row in data.get("bridge", [])}
            inplace = next((o for o in data["ops"] if o["op"] == "add_inplace"), {})
            rows.append({
                "framework": header if len(distinct) == 1 else f"{header} ({_where(r)})",
                "numpy → framework": _bridge_text(bridge.get("from_numpy", {})),
                "framework → numpy": _bridge_text(bridge.get("to_numpy", {})),
                "in-place addition": _bridge_text(inplace),
            })
    html_table, md_table = table(rows)
    intro = ("Measured, not taken from documentation: after each conversion, one side is written to and the "
             "other read back through the framework (x + 0); where the numpy array is read-only and the "
             "framework's array immutable, their addresses are compared through DLPack. In-place addition: "
             "did the input array itself change?")
    return Section("The numpy bridge and in-place addition", f"<p>{intro}</p>{html_table}", f"{intro}\n\n{md_table}")


def _memory_key(record: dict) -> tuple:
    data = record["report_data"]
    inplace = next((o.get("finding") for o in data["ops"] if o["op"] == "add_inplace"), None)
    return tuple(row.get("finding") for row in data.get("bridge", [])) + (inplace,)


def _bridge_text(row: dict) -> str:
    if not row:
        return ""
    return f"{row.get('expression', '')}: {row.get('finding') or row.get('status')}"


def transfer_table(records: list[dict]) -> Section:
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        row = (r.get("report_data") or {}).get("transfer") or {}
        result = row.get("detail") or row.get("status", "")
        if row.get("status") in ("not available", "mismatch", "error", "missing"):
            result = f"{row['status']}: {row.get('detail', '')}"
        rows.append({"framework": _column(r), "run": _where(r), "code": row.get("expression", ""),
                     "result": result, "GPU": row.get("gpu", "")})
    html_table, md_table = table(rows)
    intro = ("A 5×3 array to the GPU and back, compared with numpy's (throughput below, where it ran). "
             "It runs wherever the framework sees a GPU; elsewhere the row is skipped.")
    return Section("Device transfer", f"<p>{intro}</p>{html_table}", f"{intro}\n\n{md_table}")


def _format(value) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def benchmark_sections(records: list[dict]) -> list[Section]:
    groups: dict = {}
    for r in records:
        if r.get("status") == "ok" and (r.get("report_data") or {}).get("benchmarks"):
            groups.setdefault((r.get("precision"), r.get("device")), {})[_column(r)] = r
    sections = []
    for (precision, device), by_column in groups.items():
        keys = sorted({(b["benchmark"], b["n"], b["unit"]) for r in by_column.values()
                       for b in r["report_data"]["benchmarks"]},
                      key=lambda k: (list(BENCHMARK_LABELS).index(k[0]) if k[0] in BENCHMARK_LABELS else 99, k[1]))
        rows = []
        for name, n, unit in keys:
            row = {"benchmark": BENCHMARK_LABELS.get(name, name), "n": n, "unit": unit}
            for header, r in by_column.items():
                found = [b for b in r["report_data"]["benchmarks"] if b["benchmark"] == name and b["n"] == n]
                row[header] = _format(found[0]["throughput"]) if found else ""
            rows.append(row)
        html_table, md_table = table(rows)
        caption = _caption(list(by_column.values()), precision, device)
        figure = _plot(by_column, keys, precision, device)
        sections.append(Section(f"Throughput, {precision} on the {device.upper()}",
                                f"<p>{html.escape(caption)}</p>{html_table}{figure}", f"{caption}\n\n{md_table}"))
    return sections


def _caption(records: list[dict], precision: str, device: str) -> str:
    machine = records[0].get("machine") or {}
    where = records[0].get("device_name") or machine.get("cpu") or "this machine"
    cores = f", {machine['cores']} cores" if machine.get("cores") and device == "cpu" else ""
    threads = records[0].get("threads")
    threads_text = (f", {threads} thread{'' if str(threads) == '1' else 's'} per framework" if threads
                    else ", each framework's own thread count")
    repeats = sorted({b["repeats"] for r in records for b in r["report_data"]["benchmarks"]})
    calls = f"{repeats[0]}" if repeats[0] == repeats[-1] else f"{repeats[0]} to {repeats[-1]}"
    return (f"{where}{cores}{threads_text}; {precision}. Median of {calls} calls after one "
            f"warm-up call, each waited for before the clock is read. matmul: 2n³ flop per call (GFLOP/s); add: "
            f"3n² elements read or written; max along an axis: n² read; copy: the n² array's bytes (GB/s). "
            f"Higher is better; on a machine shared with other work the figures vary from run to run.")


def _plot(by_column: dict, keys: list, precision: str, device: str) -> str:
    names = list(dict.fromkeys(k[0] for k in keys))
    if not names or max(len({k[1] for k in keys if k[0] == name}) for name in names) < 1:
        return ""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        unit = next(k[2] for k in keys if k[0] == name)
        for header, r in by_column.items():
            points = sorted((b["n"], b["throughput"]) for b in r["report_data"]["benchmarks"]
                            if b["benchmark"] == name and b["throughput"])
            if points:
                axis.plot(*zip(*points), marker="o", label=header)
        axis.set_xscale("log", base=2)
        sizes = sorted({k[1] for k in keys if k[0] == name})
        axis.set_xticks(sizes, [str(n) for n in sizes])
        axis.set_yscale("log")
        axis.set_title(BENCHMARK_LABELS.get(name, name))
        axis.set_xlabel("n")
        axis.set_ylabel(unit)
        axis.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.suptitle(f"Throughput by matrix size, {precision}, {device.upper()} (higher is better)")
    figure.tight_layout()
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 7),
                  fontsize="small")
    return figure_png(figure, alt=f"throughput by matrix size, {precision}, {device}")


def sections(view) -> list[Section]:
    records = view.records
    columns = _columns(records)
    if not columns:
        return []
    return [op_table(columns), memory_table(columns), transfer_table(records), *benchmark_sections(records)]
