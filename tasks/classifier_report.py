"""The classifier's own part of the reports: precision, recall and one-vs-rest AUC of each class, per cell
(the decision regions are drawn by the generic report, from predict() and INPUT_DOMAIN in the spec)."""

from __future__ import annotations

import math

from rosetta.report.sections import Section, table

CLASS_NOTE = ("P k, R k, AUC k: precision, recall and one-vs-rest AUC of class k on the validation split. A blank "
              "precision is a class the network never predicts (no positive predictions to be precise about): "
              "after one epoch at a small learning rate (the adam recipe's lr 0.001) the network has not yet "
              "learnt the smallest zone.")


def rows_of(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        m = r.get("metrics") or {}
        if not m.get("precision"):
            continue
        row = {"variant": r.get("variant"), "device": r.get("device"), "recipe": r.get("recipe"),
               "precision": r.get("precision")}
        for name, key, digits in (("P", "precision", 4), ("R", "recall", 4), ("AUC", "auc", 5)):
            row.update({f"{name} {k}": None if v is None or (isinstance(v, float) and math.isnan(v))
                        else round(v, digits) for k, v in enumerate(m[key])})
        rows.append(row)
    return rows


def sections(view) -> list[Section]:
    rows = rows_of(view.records)
    if not rows:
        return []
    html_table, md_table = table(rows)
    return [Section("Per-class metrics on the validation split", f"<p class='muted'>{CLASS_NOTE}</p>{html_table}",
                    f"{CLASS_NOTE}\n\n{md_table}")]
