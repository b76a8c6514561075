"""``csv_summary``: a summary of a CSV table, column by column (how many values, how many
empty, and for a column of numbers its minimum, maximum, sum and mean), on a queue of its own.

An example of a team's own Hopper job type: it imports only ``hopper.plugin`` and its own
libraries, and Hopper finds it through the ``hopper.job_types`` entry point in pyproject.toml.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import marshmallow as ma

from hopper.plugin import JobCanceled, JobContext, JobType, PermanentFailure

QUEUE = "reports"
MAX_CSV_BYTES = 4 * 1024 * 1024
_CHECK_EVERY_ROWS = 10_000  # how often a long table looks at its cancellation token


def _fits(text: str) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CSV_BYTES:
        raise ma.ValidationError("Longer than 4 MiB of UTF-8.")


class SummaryPayload(ma.Schema):
    csv = ma.fields.String(required=True, validate=_fits)
    delimiter = ma.fields.String(load_default=",", validate=ma.validate.Length(equal=1))
    columns = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=200)),
        load_default=None,
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "Only these columns (default: every column)."},
    )


class ColumnSummary(ma.Schema):
    values = ma.fields.Integer(required=True)
    empty = ma.fields.Integer(required=True)
    numeric = ma.fields.Boolean(required=True)
    min = ma.fields.Float(allow_none=True, required=True)
    max = ma.fields.Float(allow_none=True, required=True)
    sum = ma.fields.Float(allow_none=True, required=True)
    mean = ma.fields.Float(allow_none=True, required=True)


class SummaryResult(ma.Schema):
    rows = ma.fields.Integer(required=True)
    columns = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(ColumnSummary), required=True
    )


class _Column:
    """Running figures: a table of any length is summarized in constant memory."""

    def __init__(self) -> None:
        self.values = self.empty = 0
        self.numeric = True
        self.low = math.inf
        self.high = -math.inf
        self.total = 0.0

    def add(self, cell: str) -> None:
        if not cell.strip():
            self.empty += 1
            return
        self.values += 1
        number = _number(cell) if self.numeric else None
        if number is None:
            self.numeric = False
            return
        self.low, self.high = min(self.low, number), max(self.high, number)
        self.total += number

    def summary(self) -> dict[str, Any]:
        numeric = self.numeric and self.values > 0
        total = self.total if numeric else None
        return {
            "values": self.values,
            "empty": self.empty,
            "numeric": numeric,
            "min": self.low if numeric else None,
            "max": self.high if numeric else None,
            "sum": total,
            "mean": total / self.values if total is not None else None,
        }


def _number(cell: str) -> float | None:
    try:
        number = float(cell.replace("_", "x"))  # "1_000" is text in a table, not a thousand
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def summarize(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    reader = csv.reader(io.StringIO(payload["csv"]), delimiter=payload["delimiter"])
    header = next(reader, None)
    if header is None:
        raise PermanentFailure("the CSV is empty: it needs a header row")
    wanted = payload["columns"] or header
    missing = [name for name in wanted if name not in header]
    if missing:
        raise PermanentFailure(f"no such columns: {', '.join(missing)}")
    positions = {name: header.index(name) for name in wanted}
    columns = {name: _Column() for name in wanted}
    rows = 0
    for row in reader:
        rows += 1
        if rows % _CHECK_EVERY_ROWS == 0 and ctx.cancellation.requested:
            raise JobCanceled(ctx.cancellation.reason or "canceled")
        for name, position in positions.items():
            columns[name].add(row[position] if position < len(row) else "")
    return {"rows": rows, "columns": {name: c.summary() for name, c in columns.items()}}


JOB_TYPES = [
    JobType(
        name="csv_summary",
        description="Summarizes a CSV table column by column: counts, and for numbers their "
        "minimum, maximum, sum and mean.",
        queue=QUEUE,
        payload_schema=SummaryPayload,
        result_schema=SummaryResult,
        handler=summarize,
        default_timeout_seconds=120,
        default_max_attempts=2,
    )
]
