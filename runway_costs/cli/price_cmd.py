"""``runway-costs price PLAN``: what a plan will cost, and whether it can run at all.

Exit codes: 0 ok, 2 bad input (plan, rate file, flags, config), 3 the plan's maximum
exceeds ``--budget`` / ``--budget-usd``. Rows, totals and feasibility are computed by
``analytics``; this module only parses flags and presents the results.
"""

from __future__ import annotations

import io
import re
import sys
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import polars as pl
import typer
from rich.console import JustifyMethod
from rich.table import Table

from runway_costs.analytics.plan import PlanError, read_plan
from runway_costs.analytics.pricing import PlanSummary, price_plan, summarize
from runway_costs.analytics.rates import RateError, RateTable, load_rates, resolve_rates_path
from runway_costs.cli.common import (
    EXIT_BUDGET,
    EXIT_USAGE,
    ConfigOption,
    DbOption,
    JsonOption,
    cli_clock,
    console,
    err_console,
    fail,
    handle_errors,
    parse_date,
    paths_from,
    read_db,
)
from runway_costs.cli.text import plain, safe

if TYPE_CHECKING:  # imported by the flags that use them: --org / --tier (and DuckDB), --compare
    from runway_costs.analytics.feasibility import Feasibility

MAX_SHOWN_ROWS = 200


def register(app: typer.Typer) -> None:
    app.command("price")(price)


@handle_errors
def price(
    plan: Annotated[Path, typer.Argument(help="Plan file: CSV or JSON rows of planned jobs.")],
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Machine-readable CSV.")] = False,
    budget: Annotated[
        int | None,
        typer.Option("--budget", min=0, help="Exit 3 if the plan may cost more credits."),
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option("--budget-usd", min=0, help="Exit 3 if the plan may cost more USD."),
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Check feasibility against this org's snapshot.")
    ] = None,
    tier: Annotated[
        int | None, typer.Option("--tier", min=1, max=5, help="Check feasibility against a tier.")
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Show the same jobs on other capable models.")
    ] = False,
    rates: Annotated[
        Path | None,
        typer.Option(
            "--rates",
            help="Rate file (config `rates`; default: the rate table shipped in the package)",
        ),
    ] = None,
    on: Annotated[
        str | None,
        typer.Option("--date", help="Price rows without a date as of YYYY-MM-DD (default today)."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Price a plan of generations: per row, by model, by label, in credits and USD."""
    for a, b, names in (
        (as_json, as_csv, "--json and --csv"),
        (budget is not None, budget_usd is not None, "--budget and --budget-usd"),
        (org is not None, tier is not None, "--org and --tier"),
    ):
        if a and b:
            raise fail(f"{names} cannot be used together")
    paths = paths_from(config, db)
    now = cli_clock()()
    price_date = parse_date(on, "--date") if on else now.date()
    try:
        table = load_rates(resolve_rates_path(rates, paths.rates_path))
    except RateError as exc:
        raise fail(str(exc)) from None
    try:
        planned = read_plan(plan, table)
    except PlanError as exc:
        err_console.print(
            f"[bold red]error:[/] {safe(exc.source)}: {exc.total} problem(s), nothing priced",
            highlight=False,
            soft_wrap=True,
        )
        for line in exc.lines():
            err_console.print(f"  {plain(line)}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None

    priced = price_plan(planned, table, price_date)
    summary = summarize(priced)
    best = None
    if compare:
        from runway_costs.analytics.compare import alternatives, cheapest

        best = cheapest(priced, alternatives(planned, table, price_date))
    feas = _feasibility(org, tier, priced, table, paths.db_path, now)
    limit = _budget(budget, budget_usd, summary)
    report = PriceReport(plan, price_date, table, priced, summary, best, feas, limit)

    if as_json:
        _write_json(_stdout_bytes(), report)
    elif as_csv:
        _csv(priced, summary, best, feas).write_csv(_stdout_bytes())
    else:
        _show(report)

    if summary.total.unpriced_rows:
        err_console.print(
            f"[yellow]warning:[/] {summary.total.unpriced_rows} row(s) have no price and are "
            "not in the totals",
            highlight=False,
            soft_wrap=True,
        )
    if limit is not None and limit["exceeded"]:
        unit = "credits" if budget is not None else "USD"
        got = summary.total.credits_max if budget is not None else summary.total.usd_max
        raise fail(
            f"over budget: the plan may cost up to {got:,} {unit}, the budget is "
            f"{limit['limit']:,} {unit}",
            EXIT_BUDGET,
        )


def _feasibility(
    org: str | None,
    tier: int | None,
    priced: pl.DataFrame,
    table: RateTable,
    db_path: Path,
    now: datetime,
) -> Feasibility | None:
    if org is None and tier is None:
        return None
    from runway_costs.analytics.feasibility import (
        FeasibilityError,
        feasibility_for_org,
        feasibility_for_tier,
    )

    if org is not None:
        with read_db(db_path) as con:
            try:
                return feasibility_for_org(con, org, priced, table, as_of=now)
            except FeasibilityError as exc:
                raise fail(str(exc)) from None
    from runway_costs.analytics.tiertable import TierError, load_tiers

    assert tier is not None
    try:
        return feasibility_for_tier(load_tiers(), tier, priced, table)
    except TierError as exc:
        raise fail(str(exc)) from None


def _budget(credits: int | None, usd: float | None, summary: PlanSummary) -> dict[str, Any] | None:
    """The budget check on the plan's maximum (ranges are checked at their top)."""
    if credits is not None:
        return {
            "unit": "credits",
            "limit": credits,
            "exceeded": summary.total.credits_max > credits,
        }
    if usd is not None:
        return {"unit": "usd", "limit": usd, "exceeded": summary.total.usd_max > usd}
    return None


@dataclass(frozen=True)
class PriceReport:
    """Everything one ``price`` run computed: what each output format presents."""

    plan: Path
    on: date
    table: RateTable
    priced: pl.DataFrame
    summary: PlanSummary
    best: pl.DataFrame | None  # cheapest alternative per row (--compare)
    feas: Feasibility | None  # --org / --tier
    limit: dict[str, Any] | None  # --budget / --budget-usd


# ------------------------------------------------------------------------------ machines


# Output is written from columns, never from a million Python dicts: the document's small
# parts go through orjson, and each table (rows, compare, ...) is written by polars as one
# JSON object per line, in chunks, into its place in the indented document. Parsed, it is
# the same document as ``json.dumps(..., indent=2, default=str)`` of the rows as dicts
# (same keys in the same order, same values): tests/pricing/test_price_output.py.
JSON_CHUNK_ROWS = 50_000


def _stdout_bytes() -> BinaryIO:
    """Standard output as bytes, after whatever was written to it as text."""
    sys.stdout.flush()
    return sys.stdout.buffer


def _feasibility_doc(feas: Feasibility) -> dict[str, Any]:
    doc = {f.name: getattr(feas, f.name) for f in fields(feas)}
    doc["notes"] = list(feas.notes)
    del doc["window"]  # said as the two fields below, as before the window was typed
    doc["purchases_window"] = feas.purchases_window
    doc["purchases_observed_since"] = feas.purchases_observed_since
    return doc


def _document(report: PriceReport) -> dict[str, Any]:
    """The JSON document; its tables stay polars frames (``_write_json`` writes them)."""
    doc: dict[str, Any] = {
        "plan": str(report.plan),
        "priced_on": report.on.isoformat(),
        "rates": str(report.table.source),
        "credit_usd": report.table.credit_usd,
        "rows": report.priced,
        "by_model": report.summary.by_model,
        "by_label": report.summary.by_label,
        "total": asdict(report.summary.total),
        "unpriced_rows": report.summary.unpriced_rows,
    }
    if report.limit is not None:
        doc["budget"] = report.limit
    if report.best is not None:
        doc["compare"] = report.best
    if report.feas is not None:
        doc["feasibility"] = _feasibility_doc(report.feas)
    return doc


def _write_json(out: BinaryIO, report: PriceReport) -> None:
    """The document, indented by two spaces; each table row is one line."""
    import orjson

    frames: dict[bytes, pl.DataFrame] = {}
    tag = uuid.uuid4().hex

    def placeholder(value: Any) -> Any:
        if isinstance(value, pl.DataFrame):
            key = f"@frame-{tag}-{len(frames)}@"
            frames[f'"{key}"'.encode()] = value
            return key
        if isinstance(value, dict):
            return {k: placeholder(v) for k, v in value.items()}
        return value

    text = orjson.dumps(
        placeholder(_document(report)),
        option=orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME,
        default=str,
    )
    pos = 0
    for match in re.finditer(rb'"@frame-[0-9a-f]{32}-[0-9]+@"', text):
        frame = frames.get(match.group(0))
        if frame is None:  # cannot be: a path would have to spell this run's random tag
            continue
        out.write(text[pos : match.start()])
        line_start = text.rfind(b"\n", 0, match.start()) + 1
        indent = len(text[line_start : match.start()]) - len(
            text[line_start : match.start()].lstrip(b" ")
        )
        _write_json_rows(out, frame, indent)
        pos = match.end()
    out.write(text[pos:])
    out.write(b"\n")
    out.flush()


def _write_json_rows(out: BinaryIO, frame: pl.DataFrame, indent: int) -> None:
    """A frame as a JSON array of row objects, one per line, written chunk by chunk."""
    if frame.height == 0:
        out.write(b"[]")
        return
    pad = b" " * (indent + 2)
    out.write(b"[\n")
    for start in range(0, frame.height, JSON_CHUNK_ROWS):
        buf = io.BytesIO()
        frame.slice(start, JSON_CHUNK_ROWS).write_ndjson(buf)
        # one object per line; a newline inside a string is escaped, so each is a row end
        data = buf.getvalue()
        del buf
        sep = b",\n" + pad
        rows = data.replace(b"\n", sep)  # the chunk's last row ends with a spare separator
        del data
        out.write(pad)
        out.write(memoryview(rows)[: -len(sep)])
        out.write(b",\n" if start + JSON_CHUNK_ROWS < frame.height else b"\n")
    out.write(b" " * indent + b"]")


def _csv(
    priced: pl.DataFrame,
    summary: PlanSummary,
    best: pl.DataFrame | None,
    feas: Feasibility | None,
) -> pl.DataFrame:
    """One CSV; a ``section`` column tells rows, by_model, by_label, total, feasibility apart."""
    rows = priced
    if best is not None:
        rows = rows.join(
            best.select(
                "row",
                "alt_model",
                "alt_credits_min",
                "alt_credits_max",
                "saving_credits",
                "saving_usd",
            ),
            on="row",
            how="left",
        )
    parts = [
        rows.select(pl.lit("row").alias("section"), pl.all()),
        summary.by_model.select(pl.lit("by_model").alias("section"), pl.all()),
        summary.by_label.select(pl.lit("by_label").alias("section"), pl.all()),
        pl.DataFrame([asdict(summary.total)]).select(pl.lit("total").alias("section"), pl.all()),
    ]
    if feas is not None:
        parts.append(feas.models.select(pl.lit("feasibility").alias("section"), pl.all()))
    return pl.concat(parts, how="diagonal_relaxed")


# ------------------------------------------------------------------------------ humans


def _range(lo: int | float | None, hi: int | float | None, usd: bool = False) -> str:
    if lo is None or hi is None:
        return "-"
    fmt = (lambda v: f"${v:,.2f}") if usd else (lambda v: f"{v:,}")
    return fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"


def _job(row: dict[str, Any]) -> str:
    parts = []
    if row["seconds"] is not None:
        parts.append(f"{row['seconds']:g} s")
    if row["characters"] is not None:
        parts.append(f"{row['characters']:,} chars")
    if row["resolution"]:
        parts.append(row["resolution"])
    if row["audio"] is not None:
        parts.append("audio" if row["audio"] else "no audio")
    if row["date"] is not None:
        parts.append(f"on {row['date']}")
    return ", ".join(parts)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return " ".join(f"{v}{u}" for v, u in parts if v) or "0s"


def _totals_table(title: str, key: str, frame: pl.DataFrame) -> Table:
    t = Table(title=title, title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        (key, "left"),
        ("rows", "right"),
        ("count", "right"),
        ("credits", "right"),
        ("USD", "right"),
    )
    for name, justify in columns:
        t.add_column(name, justify=justify)
    for r in frame.head(MAX_SHOWN_ROWS).iter_rows(named=True):
        t.add_row(
            safe(r[key]),
            str(r["rows"]),
            f"{r['count']:,}",
            _range(r["credits_min"], r["credits_max"]),
            _range(r["usd_min"], r["usd_max"], usd=True),
        )
    return t


def _show(report: PriceReport) -> None:
    rows = Table(
        title=f"{safe(report.plan)} priced on {report.on} "
        f"(rates: {safe(report.table.source.name)})",
        title_justify="left",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("line", "right"),
        ("label", "left"),
        ("model", "left"),
        ("count", "right"),
        ("job", "left"),
        ("credits", "right"),
        ("USD", "right"),
    )
    for name, justify in columns:
        rows.add_column(name, justify=justify)
    for r in report.priced.head(MAX_SHOWN_ROWS).iter_rows(named=True):
        credits = (
            _range(r["credits_min"], r["credits_max"]) if r["priced"] else "[yellow]unpriced[/]"
        )
        rows.add_row(
            str(r["line"] or r["row"]),
            safe(r["label"] or ""),
            safe(r["model"]),
            f"{r['count']:,}",
            safe(_job(r)),
            credits,
            _range(r["usd_min"], r["usd_max"], usd=True),
        )
    console.print(rows)
    _more(report.priced.height, "rows")
    console.print(_totals_table("By model", "model", report.summary.by_model))
    _more(report.summary.by_model.height, "models")
    if report.summary.by_label.height > 1 or report.summary.by_label["label"][0] != "(no label)":
        console.print(_totals_table("By label", "label", report.summary.by_label))
        _more(report.summary.by_label.height, "labels")
    tot = report.summary.total
    console.print(
        f"[bold]Total:[/] {_range(tot.credits_min, tot.credits_max)} credits "
        f"({_range(tot.usd_min, tot.usd_max, usd=True)}) for {tot.rows:,} rows"
        + (f", {tot.unpriced_rows} unpriced" if tot.unpriced_rows else ""),
        highlight=False,
    )
    for r in report.summary.unpriced_rows.head(MAX_SHOWN_ROWS).iter_rows(named=True):
        console.print(
            f"[yellow]unpriced:[/] line {r['line'] or r['row']} {safe(r['model'])}: "
            f"{safe(r['note'])}",
            highlight=False,
        )
    _more(report.summary.unpriced_rows.height, "unpriced rows")
    if report.best is not None:
        _show_compare(report.best)
    if report.feas is not None:
        _show_feasibility(report.feas)
    if report.limit is not None:
        shown = (
            f"{report.limit['limit']:,} credits"
            if report.limit["unit"] == "credits"
            else (f"${report.limit['limit']:,.2f}")
        )
        verdict = "[red]exceeded[/]" if report.limit["exceeded"] else "[green]within budget[/]"
        console.print(f"[bold]Budget:[/] {shown}: {verdict}", highlight=False)


def _show_compare(best: pl.DataFrame) -> None:
    t = Table(title="Cheapest alternative per row", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("line", "right"),
        ("model", "left"),
        ("credits", "right"),
        ("cheapest alternative", "left"),
        ("its credits", "right"),
        ("saving", "right"),
    )
    for name, justify in columns:
        t.add_column(name, justify=justify)
    for r in best.head(MAX_SHOWN_ROWS).iter_rows(named=True):
        if r["alt_model"] is None:
            alt, its, saving = "none can do this job", "-", "-"
        else:
            alt = safe(r["alt_model"])
            its = _range(r["alt_credits_min"], r["alt_credits_max"])
            saving = (
                f"{r['saving_credits']:,} (${r['saving_usd']:,.2f})"
                if r["saving_credits"] > 0
                else "already cheapest"
            )
        t.add_row(
            str(r["line"] or r["row"]),
            safe(r["model"]),
            _range(r["credits_min"], r["credits_max"]),
            alt,
            its,
            saving,
        )
    console.print(t)
    _more(best.height, "rows")


def _more(height: int, what: str) -> None:
    """Tables on the terminal stop at MAX_SHOWN_ROWS; say what is left out."""
    if height > MAX_SHOWN_ROWS:
        console.print(f"... {height - MAX_SHOWN_ROWS:,} more {what} (use --json or --csv)")


def _show_feasibility(feas: Feasibility) -> None:
    t = Table(title=f"Feasibility against {safe(feas.source)}", title_justify="left")
    for name in (
        "model",
        "generations",
        "used today",
        "daily limit",
        "days needed",
        "concurrency",
        "min wall-clock",
    ):
        t.add_column(name, justify="left" if name == "model" else "right")
    for r in feas.models.iter_rows(named=True):
        if r["note"]:
            t.add_row(
                safe(r["model"]), f"{r['generations']:,}", "-", "-", "-", "-", safe(r["note"])
            )
            continue
        t.add_row(
            safe(r["model"]),
            f"{r['generations']:,}",
            f"{r['used_today']:,}",
            _range(r["daily_limit_min"], r["daily_limit_max"]),
            _range(r["days_min"], r["days_max"]),
            _range(r["concurrency_min"], r["concurrency_max"]),
            _duration(r["wall_clock_min_s"])
            if r["wall_clock_min_s"] == r["wall_clock_max_s"]
            else f"{_duration(r['wall_clock_min_s'])}–{_duration(r['wall_clock_max_s'])}",
        )
    console.print(t)
    if feas.balance is not None:
        verdict = "[green]fits[/]" if feas.fits_balance else "[red]does not fit[/]"
        console.print(
            f"Balance: {feas.balance:,} credits; plan maximum {feas.plan_credits_max:,}: "
            f"{verdict}"
            + (f", {feas.missing_credits:,} credits missing" if feas.missing_credits else ""),
            highlight=False,
        )
    bought = (
        f"{feas.purchased_30d:,} bought {safe(feas.window.text)}, "
        if feas.purchased_30d is not None and feas.window is not None
        else ""
    )
    verdict = (
        "[green]fits[/]"
        if feas.fits_cap
        else (f"[red]does not fit[/]: {feas.cap_shortfall:,} credits over the cap")
    )
    console.print(
        f"Purchase cap: {feas.purchase_cap:,} credits per 30 days, {bought}"
        f"{feas.cap_available:,} available; buying {feas.missing_credits:,}: {verdict}",
        highlight=False,
    )
    for note in feas.notes:
        console.print(f"[dim]note: {safe(note)}[/]", highlight=False)
