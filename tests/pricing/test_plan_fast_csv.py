"""The polars fast path for CSV plans decides exactly what the csv module decides: the same
typed rows, or the same problems with the same line numbers, for every file; when it cannot
be sure (quoted line breaks, bare CR, NUL, huge fields) it hands the file to the csv path."""

from __future__ import annotations

import sys

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runway_costs.analytics import plan as plan_mod
from runway_costs.analytics.plan import PlanError, plan_from_bytes
from runway_costs.analytics.rates import RateTable


def outcome(data: bytes, rates: RateTable) -> tuple[str, object]:
    try:
        frame = plan_from_bytes(data, "p.csv", ".csv", rates)
    except PlanError as exc:
        return "error", (exc.lines(), exc.total)
    return "ok", frame


def both_paths(data: bytes, rates: RateTable, monkeypatch: pytest.MonkeyPatch):
    fast = outcome(data, rates)
    with monkeypatch.context() as m:
        m.setattr(plan_mod, "_parse_csv_fast", lambda text, data=None: None)
        slow = outcome(data, rates)
    return fast, slow


def assert_same(fast, slow) -> None:
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "ok":
        assert isinstance(fast[1], pl.DataFrame) and isinstance(slow[1], pl.DataFrame)
        assert fast[1].equals(slow[1]), (fast[1], slow[1])
    else:
        assert fast[1] == slow[1]


CASES = {
    "plain": "model,count,seconds\ngen4.5,2,10\nveo3,1,8\n",
    "no final newline": "model,count,seconds\ngen4.5,2,10\nveo3,1,8",
    "crlf": "model,count,seconds\r\ngen4.5,2,10\r\nveo3,1,8\r\n",
    "bom": "\ufeffmodel,count\ngen4_image,2\n",
    "blank lines": "model,count\n\ngen4_image,2\n  \n,,\n , \ngen4_image,3\n\n",
    "ragged": "model,count\ngen4_image,1\ngen4_image,1,extra\ngen4_image\n,\n",
    "quoted": 'label,model,count\n"a, b",gen4_image,2\n"say ""hi""",gen4_image,1\nx,gen4_image,3\n',
    "quote mid field": 'label,model\n5" tv,gen4_image\nab"c,gen4_image\n',
    "after closing quote": 'label,model\n"ab"c,gen4_image\n "x",gen4_image\n',
    "quoted blank row": 'model,count\n"",""\ngen4_image,1\n',
    "quoted ragged": 'model,count\n"gen4_image",1,"x"\ngen4_image,1\n',
    "quoted newline": 'label,model\n"two\nlines",gen4_image\nx,gen4_image\n',
    "quote open at end": 'label,model\nx,gen4_image\n"open,gen4_image\n',
    "bare cr": "model,count\rgen4_image,1\rgen4_image,2\r",
    "nul": "model,label\ngen4_image,a\x00b\n",
    "unicode spaces": "model,label,count\n\u3000gen4_image\xa0, x\x1c ,\x1f2\u2028\n",
    "odd spaces only": "model,label\ngen4_image,\x1c\x1d\n",
    "one column": "model\ngen4_image\ngen4_image,x\n\ngen4_image\n",
    "unknown and duplicate columns": "model,secnds,Model,qty\ngen4_image,1,x,2\n",
    "no model column": "count,seconds\n1,5\n",
    "semicolons": "model;count\ngen4_image;1\n",
    "quoted header": '"model","count"\ngen4_image,1\n',
    "header with quoted newline": '"mo\ndel",count\ngen4_image,1\n',
    "header only": "model,count\n",
    "bad values": "model,count,seconds\ngen45,two,ten\nveo3,0,5\ngen4.5,1.5,\n",
    "many ragged": "model,count\n" + "gen4_image,1,2\n" * 70 + "gen4_image,x\n" * 10,
    "whitespace fields": "model , count\n gen4_image , 2 \n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_matches_the_csv_module(name, rates, monkeypatch) -> None:
    fast, slow = both_paths(CASES[name].encode("utf-8"), rates, monkeypatch)
    assert_same(fast, slow)


def test_fast_path_is_taken_for_ordinary_and_quoted_files(monkeypatch) -> None:
    for name in ("plain", "crlf", "quoted", "ragged", "blank lines", "unicode spaces"):
        assert plan_mod._parse_csv_fast(CASES[name].lstrip("\ufeff")) is not None, name
    for name in ("quoted newline", "quote open at end", "bare cr", "nul", "semicolons"):
        assert plan_mod._parse_csv_fast(CASES[name]) is None, name


def test_a_field_past_the_csv_limit_falls_back_to_the_csv_message(rates, monkeypatch) -> None:
    data = f"model,text\neleven_multilingual_v2,{'a' * 131_073}\n".encode()
    assert plan_mod._parse_csv_fast(data.decode()) is None
    fast, slow = both_paths(data, rates, monkeypatch)
    assert_same(fast, slow)
    assert fast[0] == "error" and "field larger than field limit" in str(fast[1])


def test_many_ragged_rows_are_counted_and_the_first_fifty_listed(rates) -> None:
    data = ("model,count\n" + "gen4_image,1,2\n" * 70).encode()
    with pytest.raises(PlanError) as info:
        plan_from_bytes(data, "p.csv", ".csv", rates)
    assert info.value.total == 70
    lines = info.value.lines()
    assert (
        lines[0]
        == "p.csv: line 2: has 3 fields but the header has 2 (a delimiter or quoting problem?)"
    )
    assert lines[49].startswith("p.csv: line 51: has 3 fields")
    assert lines[50] == "p.csv: ... and 20 more problems"


def test_python_whitespace_table_is_str_isspace() -> None:
    expected = "".join(chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace())
    assert expected == plan_mod._PY_WHITESPACE


CELLS = st.lists(
    st.sampled_from(
        ["gen4_image", "gen4.5", "veo3", "10", "2", "", " ", '"', '""', '"a,b"', "x y",
         "\x1c", "\u3000", ",", "\r\n", "\n", "\r", "é", "1080p"]
    ),
    max_size=40,
)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.sampled_from(["model,count,seconds\n", "label,model\r\n", "model\n"]), cells=CELLS)
def test_random_files_decide_the_same(header, cells, rates, monkeypatch) -> None:
    data = (header + "".join(cells)).encode()
    fast, slow = both_paths(data, rates, monkeypatch)
    assert_same(fast, slow)
