"""Plans: read a CSV or JSON plan file, check every row against the rate table, type it.

A plan is rows of planned jobs (fields in ``PLAN_FIELDS``). Bad input must be fixed before
anything is priced, so validation collects ALL problems (up to ``MAX_ERRORS``) with the
file's own line numbers (the CSV header is line 1; JSON rows by index and line) and a
suggestion where one exists, then raises ``PlanError``. Checks run as polars expressions
over the whole plan; Python only parses the file and builds suggestions per distinct value.

Bounds (README "Bounds on plan values"): ``count`` is a whole number from 1 to
``MAX_COUNT``; ``seconds`` a number above 0 up to ``MAX_SECONDS``; ``characters`` (or the
length of ``text``) a whole number from 1 to ``MAX_CHARACTERS``; ``inf`` and ``nan`` are
refused. A missing count means 1; a count that is there but unreadable is an error. A row
whose worst case (its count and units at the model's highest price in the rate table) could
pass ``core.money.MAX_CREDITS``, or a plan whose rows could together, is refused, so prices
and totals always fit in an Int64.

Public API:
- ``read_plan(path: Path, rates: RateTable) -> pl.DataFrame``          (raises PlanError)
- ``plan_from_records(records: list[dict], rates: RateTable, source: str = "<plan>")
  -> pl.DataFrame``  (the dashboard's planner: rows as dicts, same checks)
- ``PLAN_COLUMNS``: the typed frame's columns, the input of ``analytics.pricing.price_plan``.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from runway_costs.analytics.rates import AUDIO_MODES, PER_UNITS, RateTable
from runway_costs.core.money import MAX_CREDITS

PLAN_FIELDS = (
    "model",
    "count",
    "seconds",
    "resolution",
    "ratio",
    "audio",
    "characters",
    "text",
    "label",
    "date",
    "endpoint",
)
ALIASES = {"duration": "seconds"}  # accepted as the field it names
HINTS = {  # not accepted, but suggested
    "quantity": "count",
    "qty": "count",
    "n": "count",
    "secs": "seconds",
    "length": "seconds",
    "chars": "characters",
    "project": "label",
    "campaign": "label",
    "res": "resolution",
    "aspect": "ratio",
    "aspect_ratio": "ratio",
}
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "row": pl.Int64(),
    "label": pl.String(),
    "model": pl.String(),
    "count": pl.Int64(),
    "seconds": pl.Float64(),
    "resolution": pl.String(),
    "ratio": pl.String(),
    "audio": pl.Boolean(),
    "characters": pl.Int64(),
    "endpoint": pl.String(),
    "date": pl.Date(),
}
PLAN_COLUMNS = tuple(PLAN_SCHEMA)
MAX_ERRORS = 50
MAX_COUNT = 1_000_000  # jobs in one row
MAX_SECONDS = 86_400  # one day of video or audio per job
MAX_CHARACTERS = 1_000_000  # characters of text per job
SHOWN_CHARS = 24  # a bad value is echoed up to this long
TRUE_WORDS = ("true", "yes", "y", "1")
FALSE_WORDS = ("false", "no", "n", "0")


@dataclass(frozen=True, slots=True)
class PlanIssue:
    """One problem: where (file line, JSON row index) and what, naming the field."""

    line: int | None
    row: int | None
    message: str

    def where(self, json_rows: bool) -> str:
        if json_rows and self.row is not None:
            return f"row {self.row}" + (f" (line {self.line})" if self.line else "")
        return f"line {self.line}" if self.line is not None else ""


class PlanError(Exception):
    """The plan cannot be priced; ``issues`` lists every problem found (capped)."""

    def __init__(
        self, source: str, issues: list[PlanIssue], *, json_rows: bool = False, omitted: int = 0
    ):
        self.source = source
        self.issues = issues[:MAX_ERRORS]
        self.total = len(issues) + omitted
        self.json_rows = json_rows
        super().__init__(self.render())

    def lines(self) -> list[str]:
        out = []
        for issue in self.issues:
            where = issue.where(self.json_rows)
            out.append(
                f"{self.source}: {where}: {issue.message}"
                if where
                else f"{self.source}: {issue.message}"
            )
        if self.total > len(self.issues):
            out.append(f"{self.source}: ... and {self.total - len(self.issues)} more problems")
        return out

    def render(self) -> str:
        return "\n".join(self.lines())


def read_plan(path: Path, rates: RateTable) -> pl.DataFrame:
    """Read a plan file (CSV or JSON, by extension then content) and return the typed plan."""
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlanError(source, [PlanIssue(None, None, "file does not exist")]) from None
    except OSError as exc:
        raise PlanError(source, [PlanIssue(None, None, f"cannot read: {exc.strerror}")]) from None
    return plan_from_bytes(data, source, path.suffix, rates)


def plan_from_bytes(data: bytes, source: str, suffix: str, rates: RateTable) -> pl.DataFrame:
    """The typed plan from a file's bytes (an upload, say): CSV or JSON by ``suffix`` (e.g.
    ".csv"), then by content; every problem is reported against ``source``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start]
        raise PlanError(
            source,
            [PlanIssue(line, None, f"not UTF-8 text (byte 0x{byte:02x}); save the plan as UTF-8")],
        ) from None
    if not text.strip():
        raise PlanError(source, [PlanIssue(None, None, "the plan is empty (no header, no rows)")])
    suffix = suffix.lower()
    is_json = suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in "[{")
    try:
        parsed = _parse_json(text) if is_json else _parse_csv(text, data)
    except PlanError as exc:
        raise PlanError(source, exc.issues, json_rows=is_json) from None
    return _validate(source, parsed, rates, json_rows=is_json)


def plan_from_records(
    records: list[dict[str, Any]], rates: RateTable, source: str = "<plan>"
) -> pl.DataFrame:
    """Check and type plan rows given as dicts (row numbers are 1-based indexes)."""
    parsed = _from_lists(*_from_objects(records, [None] * len(records)))
    return _validate(source, parsed, rates, json_rows=True)


# ------------------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class _Parsed:
    """A parsed plan before the checks: ``raw`` has ``line``, ``row`` and every plan field
    as text (null when empty or absent); ``fields`` are the plan fields the file has."""

    raw: pl.DataFrame
    fields: frozenset[str]
    issues: list[PlanIssue]
    omitted: int = 0  # parse problems counted but not kept (past MAX_ERRORS)


_RAW_SCHEMA = {"line": pl.Int64, "row": pl.Int64, **{f: pl.String for f in PLAN_FIELDS}}

# Every character Python's str.strip() removes (str.isspace), as a polars strip set: polars'
# own default (Rust's char::is_whitespace) keeps U+001C..U+001F, which Python strips.
# tests/pricing/test_plan_fast_csv.py holds this to str.isspace.
_PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _from_lists(
    columns: dict[str, list],
    lines: list[int | None],
    rows: list[int],
    issues: list[PlanIssue],
) -> _Parsed:
    raw = pl.DataFrame(
        {
            "line": lines,
            "row": rows,
            **{f: columns.get(f) or [None] * len(rows) for f in PLAN_FIELDS},
        },
        schema=_RAW_SCHEMA,
    )
    return _Parsed(raw, frozenset(columns), issues)


def _parse_csv(text: str, data: bytes | None = None) -> _Parsed:
    """The CSV plan: the polars fast path when it can decide the whole file, else the csv
    module line by line. Both give the same rows, values, line numbers and messages."""
    fast = _parse_csv_fast(text, data)
    return fast if fast is not None else _from_lists(*_parse_csv_rows(text))


def _parse_csv_fast(text: str, data: bytes | None = None) -> _Parsed | None:
    """Parse a CSV plan with polars, as ``csv.reader`` (default dialect) would, or return
    None when this path cannot be sure it would (the caller then uses the csv module).

    Sure means: no NUL, no line break but ``\\n`` and ``\\r\\n``, a one-line header, no line
    longer than csv's field limit, and no quoted field that spans lines. Each physical line
    is then one record, so its line number is its index. Lines without a quote character
    are split on commas in polars; the few lines with one are read by the csv module
    itself (each on its own; a quote still open at the end of a line means fall back), so
    quoting is the csv module's by construction. Blank rows are skipped and ragged rows
    reported exactly as ``_parse_csv_rows`` does."""
    if "\x00" in text or text.count("\r") != text.count("\r\n"):
        return None
    first = text.find("\n")
    reader = csv.reader(io.StringIO(text if first < 0 else text[: first + 1], newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return None
    if any("\n" in h or "\r" in h for h in header):
        return None  # a quoted header field runs past its line
    header = [h.strip() for h in header]
    if len(header) == 1 and any(d in header[0] for d in ";\t|"):
        return None  # the csv path names the delimiter
    issues: list[PlanIssue] = []
    names = _column_names(header, 1, None, issues)
    width = len(header)
    c = pl.col
    if data is None:  # the file's bytes (a BOM is on the header line, which is skipped)
        data = text.encode()
    lines = _csv_lines(data)
    if lines is None:
        return None
    blank = c("_text").str.contains(r"^[\s\x1c-\x1f,]*$")  # csv reads empty fields: skipped
    quote = c("_text").str.contains('"', literal=True)
    longest, n_blank, n_quoted, n_ragged = lines.select(
        c("_text").str.len_chars().max().alias("longest"),
        blank.sum().alias("blank"),
        quote.sum().alias("quoted"),
        (c("_text").str.count_matches(",", literal=True) != width - 1).sum().alias("ragged"),
    ).row(0)
    if longest is not None and longest > csv.field_size_limit():
        return None
    if not (n_blank or n_quoted or n_ragged):  # the usual plan: polars reads the fields
        regular = _regular_fields(data, width, lines.height)
        if regular is not None:
            del lines
            return _finish(regular, names, issues, 0)
    body = lines.filter(~blank).with_columns(_quoted=quote)
    del lines
    quoted = _read_quoted_lines(body.filter(c("_quoted")), width)
    if quoted is None:
        return None
    q_rows, q_ragged = quoted
    split = (
        body.lazy()
        .filter(~c("_quoted"))
        .select(
            "line",
            "_text",
            c("_text")
            .str.splitn(",", width + 1)
            .struct.rename_fields([f"_f{i}" for i in range(width + 1)])
            .alias("_split"),
        )
        .unnest("_split")
        .with_columns(_ok=c(f"_f{width - 1}").is_not_null() & c(f"_f{width}").is_null())
        .collect()
    )
    del body
    ragged = pl.concat(
        [
            split.filter(~c("_ok")).select(
                "line",
                _fields=c("_text").str.count_matches(",", literal=True).cast(pl.Int64) + 1,
            ),
            q_ragged,
        ]
    ).sort("line")
    omitted = max(0, ragged.height - MAX_ERRORS)
    issues.extend(
        PlanIssue(
            line,
            None,
            f"has {n} fields but the header has {width} (a delimiter or quoting problem?)",
        )
        for line, n in ragged.head(MAX_ERRORS).iter_rows()
    )
    named = [f"_f{i}" for i, name in enumerate(names) if name]
    kept = split.filter(c("_ok")).select("line", *named)
    del split
    if q_rows.height:
        kept = pl.concat([kept, q_rows.select("line", *named)]).sort("line")
    return _finish(kept, names, issues, omitted)


def _csv_lines(data: bytes) -> pl.DataFrame | None:
    """The body lines (``line`` from 2, ``_text`` without its line end) of a file whose
    only line ends are LF and CRLF, or None if polars did not give one row per line."""
    c = pl.col
    lines = pl.read_csv(
        data,
        has_header=False,
        separator="\x00",  # not in the file (checked): one column, the whole line
        quote_char=None,
        infer_schema=False,
        new_columns=["_text"],
    )
    if lines.height != data.count(b"\n") + (0 if data.endswith(b"\n") else 1):
        return None
    return (
        lines.lazy()
        .with_row_index("line", offset=1)
        .filter(c("line") > 1)  # the header
        .select(c("line").cast(pl.Int64), c("_text").fill_null("").str.strip_suffix("\r"))
        .collect()
    )


def _regular_fields(data: bytes, width: int, n_lines: int) -> pl.DataFrame | None:
    """Fields ``_f0``.. of a body with no blank, quoted or ragged line: polars' CSV reader
    with no quoting is then the split on commas; None if it does not give every line."""
    if not n_lines:
        return None
    fields = pl.read_csv(
        data,
        has_header=False,
        skip_rows=1,
        quote_char=None,
        infer_schema=False,
        new_columns=[f"_f{i}" for i in range(width)],
    )
    if fields.height != n_lines or fields.width != width:
        return None
    return fields.with_row_index("line", offset=2).with_columns(pl.col("line").cast(pl.Int64))


def _finish(
    fields: pl.DataFrame,
    names: list[str | None],
    issues: list[PlanIssue],
    omitted: int,
) -> _Parsed:
    """Rows (``line`` + ``_f0``..) as the raw plan: named fields, stripped, empty is null."""
    c = pl.col
    named = {name: f"_f{i}" for i, name in enumerate(names) if name}
    fields = fields.select("line", *named.values())
    edge_space = r"^[\s\x1c-\x1f]|[\s\x1c-\x1f]$"  # str.isspace: Unicode's and U+001C..1F
    padded = fields.select(c(f).str.contains(edge_space).any() for f in named.values()).row(0)
    for f, pad in zip(named.values(), padded, strict=True):  # one column at a time
        value = c(f).str.strip_chars(_PY_WHITESPACE) if pad else c(f)
        fields = fields.with_columns(pl.when(value != "").then(value).alias(f))
    raw = fields.with_row_index("row", offset=1).select(
        "line",
        c("row").cast(pl.Int64),
        *[(c(named[f]) if f in named else pl.lit(None, pl.String)).alias(f) for f in PLAN_FIELDS],
    )
    return _Parsed(raw, frozenset(named), issues, omitted)


def _read_quoted_lines(lines: pl.DataFrame, width: int) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """The lines holding a quote character, read by the csv module one record per line:
    (rows that have ``width`` fields, as ``line`` + ``_f0``..; ragged rows as ``line`` +
    ``_fields``), or None when a quoted field runs past the end of its line."""
    numbers = lines["line"].to_list()
    reader = csv.reader(t + "\n" for t in lines["_text"].to_list())
    good: list[list[str]] = []
    good_lines: list[int] = []
    ragged: list[tuple[int, int]] = []
    try:
        for i, fields in enumerate(reader):
            if reader.line_num != i + 1 or any("\n" in f for f in fields):
                return None
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != width:
                ragged.append((numbers[i], len(fields)))
                continue
            good.append(fields)
            good_lines.append(numbers[i])
    except csv.Error:
        return None
    rows = pl.DataFrame(
        {"line": good_lines, **{f"_f{i}": [r[i] for r in good] for i in range(width)}},
        schema={"line": pl.Int64, **{f"_f{i}": pl.String for i in range(width)}},
    )
    bad = pl.DataFrame(ragged, schema={"line": pl.Int64, "_fields": pl.Int64}, orient="row")
    return rows, bad


def _parse_csv_rows(
    text: str,
) -> tuple[dict[str, list], list[int | None], list[int], list[PlanIssue]]:
    """The csv module, record by record: decides every file the fast path gives up on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    issues: list[PlanIssue] = []
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise PlanError("<plan>", [PlanIssue(1, None, f"unreadable CSV header: {exc}")]) from None
    header = [h.strip() for h in header]
    if len(header) == 1:
        for delim, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if delim in header[0]:
                issues.append(
                    PlanIssue(
                        1,
                        None,
                        f"the header is {label}-separated, not "
                        f"comma-separated; save the plan as CSV with commas",
                    )
                )
                return {}, [], [], issues
    names = _column_names(header, 1, None, issues)
    cols: dict[str, list] = {name: [] for name in names if name}
    lines: list[int | None] = []
    rows: list[int] = []
    start = reader.line_num + 1
    try:
        for fields in reader:
            line = start
            start = reader.line_num + 1
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                issues.append(
                    PlanIssue(
                        line,
                        None,
                        f"has {len(fields)} fields but the header "
                        f"has {len(header)} (a delimiter or quoting problem?)",
                    )
                )
                continue
            lines.append(line)
            rows.append(len(rows) + 1)
            for name, value in zip(names, fields, strict=True):
                if name:
                    value = value.strip()
                    cols[name].append(value if value else None)
    except csv.Error as exc:
        issues.append(PlanIssue(reader.line_num, None, f"unreadable CSV: {exc}"))
    return cols, lines, rows, issues


def _column_names(
    header: list[str], line: int | None, row: int | None, issues: list[PlanIssue]
) -> list[str | None]:
    """Map header names to plan fields; unknown or duplicate names become issues (None)."""
    names: list[str | None] = []
    seen: set[str] = set()
    for raw in header:
        key = raw.strip().lower()
        field = ALIASES.get(key, key)
        if field not in PLAN_FIELDS:
            issues.append(PlanIssue(line, row, f"column {raw!r} is unknown{_suggest_field(key)}"))
            names.append(None)
        elif field in seen:
            issues.append(PlanIssue(line, row, f"column {raw!r} appears twice ({field})"))
            names.append(None)
        else:
            seen.add(field)
            names.append(field)
    return names


def _suggest_field(key: str) -> str:
    if key in HINTS:
        return f"; did you mean {HINTS[key]!r}?"
    close = difflib.get_close_matches(key, PLAN_FIELDS + tuple(ALIASES), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {ALIASES.get(close[0], close[0])!r}?"
    return f" (plan fields: {', '.join(PLAN_FIELDS)})"


def _parse_json(text: str) -> _Parsed:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            "<plan>", [PlanIssue(exc.lineno, None, f"invalid JSON (column {exc.colno}): {exc.msg}")]
        ) from None
    except RecursionError:
        raise PlanError(
            "<plan>", [PlanIssue(None, None, "invalid JSON: nested too deeply for a plan")]
        ) from None
    except ValueError:  # an integer longer than Python converts (4300 digits)
        raise PlanError(
            "<plan>", [PlanIssue(None, None, "invalid JSON: a number has too many digits")]
        ) from None
    records = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise PlanError(
            "<plan>",
            [PlanIssue(1, None, 'JSON plan must be a list of row objects or {"rows": [...]}')],
        )
    return _from_lists(*_from_objects(records, _element_lines(text, len(records))))


def _element_lines(text: str, n: int) -> list[int | None]:
    """Line where each row object starts, found by decoding the rows array element by element."""
    match = re.match(r"\s*\[", text) or re.search(r'"rows"\s*:\s*\[', text)
    if match is None:
        return [None] * n
    decoder = json.JSONDecoder()
    skip = re.compile(r"[\s,]*")
    pos, line, last = match.end(), 1, 0
    out: list[int | None] = []
    try:
        while len(out) < n:
            gap = skip.match(text, pos)
            if gap is None:
                return [None] * n
            pos = gap.end()
            line += text.count("\n", last, pos)
            last = pos
            out.append(line)
            _, pos = decoder.raw_decode(text, pos)
    except json.JSONDecodeError:
        return [None] * n
    return out


def _from_objects(
    records: list[Any], lines: list[int | None]
) -> tuple[dict[str, list], list[int | None], list[int], list[PlanIssue]]:
    issues: list[PlanIssue] = []
    cols: dict[str, list] = {name: [] for name in PLAN_FIELDS}
    reported: set[str] = set()
    for i, (rec, line) in enumerate(zip(records, lines, strict=True)):
        if not isinstance(rec, dict):
            issues.append(PlanIssue(line, i + 1, "a row must be an object of field: value"))
            rec = {}
        norm = {}
        for key, value in rec.items():
            name = ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
            if name not in PLAN_FIELDS:
                if key not in reported:  # each unknown field once, where first seen
                    reported.add(key)
                    issues.append(
                        PlanIssue(
                            line,
                            i + 1,
                            f"field {key!r} is unknown{_suggest_field(str(key).lower())}",
                        )
                    )
            elif isinstance(value, dict | list):
                issues.append(PlanIssue(line, i + 1, f"{name}: must be a single value"))
            else:
                norm[name] = value
        for name in PLAN_FIELDS:
            cols[name].append(_scalar_text(norm.get(name)))
    return cols, list(lines), list(range(1, len(records) + 1)), issues


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


# ------------------------------------------------------------------------------ checks


def _model_frame(rates: RateTable) -> pl.DataFrame:
    """One row per model: what validation needs to know about it."""
    res_variant = set(
        rates.prices.filter(pl.col("resolution").is_not_null())["model"].unique().to_list()
    )
    infos = list(rates.models.values())
    worst = (
        rates.prices.group_by("model")
        .agg(
            _block_min=pl.col("block").min(),
            _cmax_all=pl.col("credits_max").cast(pl.Float64).max(),
        )
        .rows_by_key("model")
    )
    return pl.DataFrame(
        {
            "model": [m.name for m in infos],
            "_per": [m.per for m in infos],
            "_block_min": [worst[m.name][0][0] if m.name in worst else None for m in infos],
            "_cmax_all": [worst[m.name][0][1] if m.name in worst else None for m in infos],
            "_durations": [list(m.durations) if m.durations else None for m in infos],
            "_durations_text": [_durations_text(m.durations) for m in infos],
            "_audio_mode": [m.audio for m in infos],
            "_endpoints": [list(m.endpoints) for m in infos],
            "_endpoints_text": [", ".join(m.endpoints) for m in infos],
            "_res_variant": [m.name in res_variant for m in infos],
        },
        schema={
            "model": pl.String,
            "_per": pl.Enum(PER_UNITS),
            "_block_min": pl.Float64,
            "_cmax_all": pl.Float64,
            "_durations": pl.List(pl.Float64),
            "_durations_text": pl.String,
            "_audio_mode": pl.Enum(AUDIO_MODES),
            "_endpoints": pl.List(pl.String),
            "_endpoints_text": pl.String,
            "_res_variant": pl.Boolean,
        },
    )


def _bad_pairs(df: pl.DataFrame, models: pl.DataFrame, value: str, allowed: str) -> pl.Expr:
    """True where a row's ``value`` is not in its model's ``allowed`` list (a model with no
    list allows anything), decided once per distinct (model, value) pair."""
    c = pl.col
    bad = (
        df.select("model", value)
        .drop_nulls()
        .unique()
        .join(models.select("model", allowed), on="model", how="inner")
        .filter(c(allowed).is_not_null() & ~c(allowed).list.contains(c(value)))
        .select(pl.struct("model", value))
        .to_series()
    )
    return pl.struct("model", value).is_in(bad.implode())


def _number(column: str) -> pl.Expr:
    """A text column as Float64: null when unreadable or ``nan`` (not a number); ``inf``
    stays, so the bounds checks name it as too large (or too small)."""
    value = pl.col(column).cast(pl.Float64, strict=False)
    return pl.when(value.is_nan()).then(None).otherwise(value)


def _shown(column: str) -> pl.Expr:
    """A value as the user wrote it, cut short when it is very long."""
    text = pl.col(column)
    return (
        pl.when(text.str.len_chars() > SHOWN_CHARS)
        .then(pl.concat_str(text.str.slice(0, SHOWN_CHARS - 1), pl.lit("…")))
        .otherwise(text)
    )


def _worst_credits() -> pl.Expr:
    """A row's most credits at any price its model has in the rate table (any date or
    variant): count x blocks of the smallest size, rounded up x the most credits per block,
    which bounds every entry's charge (and equals it for a model with one price). Null when
    a value is out of bounds (that is its own issue) or the model has no price."""
    c = pl.col
    count = pl.when(c("count").is_null()).then(pl.lit(1.0)).otherwise(c("_count_f"))
    count = pl.when((count >= 1) & (count <= MAX_COUNT)).then(count)
    chars = pl.coalesce(c("_chars_f"), c("_text_len").cast(pl.Float64))
    units = (
        pl.when(c("_per") == "second")
        .then(pl.when((c("_seconds") > 0) & (c("_seconds") <= MAX_SECONDS)).then(c("_seconds")))
        .when(c("_per") == "character")
        .then(pl.when((chars >= 1) & (chars <= MAX_CHARACTERS)).then(chars))
        .otherwise(pl.lit(1.0))
    )
    blocks = (units / c("_block_min")).round(9).ceil()
    return count * blocks * c("_cmax_all")


def _durations_text(durations: tuple[float, ...] | None) -> str | None:
    if not durations:
        return None
    values = sorted(durations)
    shown = [f"{v:g}" for v in values]
    if len(values) == 1:
        return f"only {shown[0]} s"
    if all(b - a == 1 for a, b in zip(values, values[1:], strict=False)):
        return f"{shown[0]}–{shown[-1]} s"
    return f"{', '.join(shown[:-1])} or {shown[-1]} s"


def _suggestions(values: list[str], choices: list[str]) -> dict[str, str]:
    """Closest known choice per distinct bad value (case-insensitive), '' when none."""
    lowered = {c.lower(): c for c in choices}
    out = {}
    for v in values:
        close = difflib.get_close_matches(v.lower(), list(lowered), n=1, cutoff=0.6)
        out[v] = lowered[close[0]] if close else ""
    return out


def _unknown(column: str, hints: dict[str, str], otherwise: str) -> pl.Expr:
    """ "<column> '<value>' is unknown" and, per value, "; did you mean '<x>'?" when a close
    known value exists (``hints``), else ``otherwise`` (what the known values are)."""
    text = {k: (f"; did you mean {v!r}?" if v else otherwise) for k, v in hints.items()}
    return pl.format(
        f"{column} '{{}}' is unknown{{}}",
        pl.col(column),
        pl.col(column).replace_strict(text, default="", return_dtype=pl.String),
    )


def _validate(source: str, parsed: _Parsed, rates: RateTable, *, json_rows: bool) -> pl.DataFrame:
    issues = list(parsed.issues)
    if (
        not json_rows
        and "model" not in parsed.fields
        and not any("separated" in i.message for i in issues)
    ):
        issues.append(PlanIssue(1, None, "no 'model' column: every row needs a model"))
        raise PlanError(source, issues, json_rows=json_rows, omitted=parsed.omitted)
    if not parsed.raw.height and not issues:
        issues.append(PlanIssue(None, None, "the plan has no rows"))
    if not parsed.raw.height:
        raise PlanError(source, issues, json_rows=json_rows, omitted=parsed.omitted)

    typed, found, omitted = _check_rows(parsed.raw, rates)
    issues.extend(found)
    if issues:
        issues.sort(key=lambda i: (i.line or 0, i.row or 0))
        raise PlanError(source, issues, json_rows=json_rows, omitted=omitted + parsed.omitted)
    return typed


def _check_rows(raw: pl.DataFrame, rates: RateTable) -> tuple[pl.DataFrame, list[PlanIssue], int]:
    """Every per-row check as one vectorized pass; returns the typed plan and the problems."""
    c = pl.col
    known_models = list(rates.models)
    unknown = (
        raw.filter(c("model").is_not_null() & ~c("model").is_in(known_models))["model"]
        .unique()
        .to_list()
    )
    model_hint = _suggestions(unknown, known_models)
    bad_res = (
        raw.filter(c("resolution").is_not_null() & ~c("resolution").is_in(list(rates.resolutions)))[
            "resolution"
        ]
        .unique()
        .to_list()
    )
    res_hint = _suggestions(bad_res, list(rates.resolutions))
    bad_ratio = (
        raw.filter(c("ratio").is_not_null() & ~c("ratio").is_in(list(rates.ratios)))["ratio"]
        .unique()
        .to_list()
    )
    ratio_hint = _suggestions(bad_ratio, list(rates.ratios))
    # Model attributes are looked up per row (no join: a join would copy every column of
    # a million-row plan); checks against a model's lists run on the distinct pairs.
    models = _model_frame(rates)

    def attr(name: str) -> pl.Expr:
        return c("model").replace_strict(
            models["model"], models[name], default=None, return_dtype=models.schema[name]
        )

    df = raw.with_columns(
        _per=attr("_per"),
        _block_min=attr("_block_min"),
        _cmax_all=attr("_cmax_all"),
        _audio_mode=attr("_audio_mode"),
        _ratio_res=c("ratio").replace_strict(
            list(rates.ratios), list(rates.ratios.values()), default=None, return_dtype=pl.String
        ),
        _count_f=_number("count"),
        _seconds=_number("seconds"),
        _chars_f=_number("characters"),
        _text_len=c("text").str.len_chars(),
        _audio_l=c("audio").str.to_lowercase(),
        _date=c("date").str.to_date("%Y-%m-%d", strict=False),
        _known=c("model").is_in(known_models),
    )
    df = df.with_columns(
        _bad_duration=_bad_pairs(df, models, "_seconds", "_durations"),
        _bad_endpoint=_bad_pairs(df, models, "endpoint", "_endpoints"),
    )
    known = c("_known")
    per = c("_per")
    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (c("model").is_null(), pl.lit("model: missing (every row needs a model)")),
        (
            c("model").is_not_null() & ~known,
            _unknown("model", model_hint, f" (known: {', '.join(sorted(known_models))})"),
        ),
        (
            c("count").is_not_null() & c("_count_f").is_null(),
            pl.format("count: '{}' is not a number", c("count")),
        ),
        (
            c("_count_f").is_not_null() & (c("_count_f") != c("_count_f").floor()),
            pl.format("count: must be a whole number, got {}", c("count")),
        ),
        (c("_count_f") <= 0, pl.format("count: must be at least 1, got {}", c("count"))),
        (
            c("_count_f") > MAX_COUNT,
            pl.format(
                "count: must be at most {}, got {}", pl.lit(f"{MAX_COUNT:,}"), _shown("count")
            ),
        ),
        (
            c("seconds").is_not_null() & c("_seconds").is_null(),
            pl.format("seconds: '{}' is not a number", c("seconds")),
        ),
        (c("_seconds") <= 0, pl.format("seconds: must be positive, got {}", c("seconds"))),
        (
            c("_seconds") > MAX_SECONDS,
            pl.format(
                "seconds: must be at most {} (one day), got {}",
                pl.lit(f"{MAX_SECONDS:,}"),
                _shown("seconds"),
            ),
        ),
        (
            known & (per == "second") & c("seconds").is_null(),
            pl.format(
                "seconds: missing duration; {} needs seconds{}",
                c("model"),
                pl.when(attr("_durations_text").is_not_null())
                .then(pl.format(" ({})", attr("_durations_text")))
                .otherwise(pl.lit("")),
            ),
        ),
        (
            known & (c("_seconds") > 0) & (c("_seconds") <= MAX_SECONDS) & c("_bad_duration"),
            pl.format(
                "seconds: {} accepts {}, got {}", c("model"), attr("_durations_text"), c("seconds")
            ),
        ),
        (
            c("characters").is_not_null() & c("_chars_f").is_null(),
            pl.format("characters: '{}' is not a number", c("characters")),
        ),
        (
            c("_chars_f").is_not_null()
            & ((c("_chars_f") < 1) | (c("_chars_f") != c("_chars_f").floor())),
            pl.format("characters: must be a whole number >= 1, got {}", c("characters")),
        ),
        (
            c("_chars_f") > MAX_CHARACTERS,
            pl.format(
                "characters: must be at most {}, got {}",
                pl.lit(f"{MAX_CHARACTERS:,}"),
                _shown("characters"),
            ),
        ),
        (
            c("_text_len") > MAX_CHARACTERS,
            pl.format(
                "text: {} characters, more than the {} a row may have",
                c("_text_len"),
                pl.lit(f"{MAX_CHARACTERS:,}"),
            ),
        ),
        (
            c("characters").is_not_null() & c("text").is_not_null(),
            pl.lit("characters: give characters or text, not both"),
        ),
        (
            known & (per == "character") & c("characters").is_null() & c("text").is_null(),
            pl.format("characters: missing; {} needs characters or text", c("model")),
        ),
        (
            c("resolution").is_not_null() & ~c("resolution").is_in(list(rates.resolutions)),
            _unknown("resolution", res_hint, f" (known: {', '.join(rates.resolutions)})"),
        ),
        (
            c("ratio").is_not_null() & c("_ratio_res").is_null(),
            _unknown(
                "ratio", ratio_hint, " (known ratios are listed in the rate table's [ratios])"
            ),
        ),
        (
            c("_ratio_res").is_not_null()
            & c("resolution").is_not_null()
            & (c("_ratio_res") != c("resolution")),
            pl.format(
                "ratio: {} is {}, but resolution says {}",
                c("ratio"),
                c("_ratio_res"),
                c("resolution"),
            ),
        ),
        (
            c("_audio_l").is_not_null() & ~c("_audio_l").is_in(TRUE_WORDS + FALSE_WORDS),
            pl.format("audio: must be true or false, got '{}'", c("audio")),
        ),
        (
            known & c("_audio_l").is_in(TRUE_WORDS) & (c("_audio_mode") == "never"),
            pl.format("audio: {} does not generate audio", c("model")),
        ),
        (
            known & c("_audio_l").is_in(FALSE_WORDS) & (c("_audio_mode") == "always"),
            pl.format("audio: {} always generates audio", c("model")),
        ),
        (
            c("date").is_not_null() & c("_date").is_null(),
            pl.format("date: '{}' is not a date (YYYY-MM-DD)", c("date")),
        ),
        (
            known & c("endpoint").is_not_null() & c("_bad_endpoint"),
            pl.format(
                "endpoint: {} serves {}, got '{}'",
                c("model"),
                attr("_endpoints_text"),
                c("endpoint"),
            ),
        ),
    ]
    df = df.with_columns(_worst=_worst_credits())
    checks.append(
        (
            c("_worst") > MAX_CREDITS,
            pl.lit(
                f"count: this row may cost more than {MAX_CREDITS:,} credits, the most a plan "
                "may total; lower the count or check the rate table"
            ),
        )
    )
    # Which checks fail, in one pass; messages are built only for those (none, usually).
    failing = df.select(
        cond.fill_null(False).any().alias(str(i)) for i, (cond, _) in enumerate(checks)
    ).row(0)
    found = pl.concat(
        [
            df.filter(cond.fill_null(False)).select("line", "row", msg.alias("message"))
            for (cond, msg), fails in zip(checks, failing, strict=True)
            if fails
        ]
        or [pl.DataFrame(schema={"line": pl.Int64, "row": pl.Int64, "message": pl.String})]
    ).sort("line", "row", maintain_order=True)
    issues = [
        PlanIssue(r["line"], r["row"], r["message"])
        for r in found.head(MAX_ERRORS).iter_rows(named=True)
    ]
    omitted = found.height - len(issues)
    worst_total = df.select(c("_worst").filter(c("_worst") <= MAX_CREDITS).sum()).item()
    if worst_total is not None and worst_total > MAX_CREDITS:
        issues.append(
            PlanIssue(
                None,
                None,
                f"the plan may cost more than {MAX_CREDITS:,} credits in all, the most a plan "
                "may total; split it into smaller plans",
            )
        )
    typed = df.select(
        "line",
        "row",
        c("label"),
        c("model"),
        pl.when(c("count").is_null())  # absent means one job; unreadable was an issue above
        .then(pl.lit(1, pl.Int64))
        .otherwise(c("_count_f").cast(pl.Int64, strict=False))
        .alias("count"),
        c("_seconds").alias("seconds"),
        pl.coalesce(c("resolution"), c("_ratio_res")).alias("resolution"),
        c("ratio"),
        pl.when(c("_audio_l").is_in(TRUE_WORDS))
        .then(True)
        .when(c("_audio_l").is_in(FALSE_WORDS))
        .then(False)
        .otherwise(None)
        .alias("audio"),
        pl.coalesce(
            c("_chars_f").cast(pl.Int64, strict=False), c("_text_len").cast(pl.Int64)
        ).alias("characters"),
        c("endpoint"),
        c("_date").alias("date"),
    )
    return typed, issues, omitted
