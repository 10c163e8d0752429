"""Organizations rolled up by their tags (team, cost center, ...), joined at read time.

Tags are set on ``[[orgs]]`` in the config (``tags = { team = "growth" }``) and describe
the organization, not the day: they are never stored with usage, so a tag changed today
regroups the whole history the next time anything is read. An organization without the
key (or not in the config at all) falls in the ``(untagged)`` group, so the groups of one
key always add up to the total.

Public API:

- ``UNTAGGED``: the group of organizations without the key.
- ``parse_by(value, settings, allow=...) -> Grouping``: ``org``, ``model``, ``key`` or
  ``tag:KEY``, checked (an unknown tag key names the configured ones).
- ``org_groups(settings, orgs, key) -> pl.DataFrame``: org, group (the key's value).
- ``with_tag(frame, settings, key, column="group") -> pl.DataFrame``: ``frame`` (with an
  ``org`` column) and each row's tag value in ``column``.
- ``tags_frame(settings, orgs) -> pl.DataFrame``: org and one column per tag key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from runway_costs.core.config import Settings

__all__ = [
    "UNTAGGED",
    "Grouping",
    "GroupingError",
    "org_groups",
    "parse_by",
    "tags_frame",
    "with_tag",
]

UNTAGGED = "(untagged)"
TAG_PREFIX = "tag:"


class GroupingError(ValueError):
    """A ``--by`` / group-by value that names nothing; the message says what would."""


@dataclass(frozen=True, slots=True)
class Grouping:
    """How to group spend: ``kind`` is org, model, key or tag; ``tag_key`` for a tag."""

    kind: str
    tag_key: str | None = None

    @property
    def label(self) -> str:
        return f"{TAG_PREFIX}{self.tag_key}" if self.kind == "tag" else self.kind

    @property
    def title(self) -> str:
        """The group's name in a chart legend or a table header."""
        if self.kind == "tag":
            return str(self.tag_key)
        return {"org": "organization", "model": "model", "key": "API key"}[self.kind]


def parse_by(
    value: str, settings: Settings, allow: Iterable[str] = ("org", "model", "key", "tag")
) -> Grouping:
    """A grouping from ``org``, ``model``, ``key`` or ``tag:KEY`` (KEY set on some org)."""
    allowed = tuple(allow)
    text = value.strip()
    if text.startswith(TAG_PREFIX) and "tag" in allowed:
        key = text[len(TAG_PREFIX) :]
        keys = settings.tag_keys()
        if key not in keys:
            known = ", ".join(keys) or "none: set tags = { ... } on [[orgs]]"
            raise GroupingError(f"no organization has tag key {key!r} (tag keys: {known})")
        return Grouping("tag", key)
    if text in allowed and text != "tag":
        return Grouping(text)
    choices = [a if a != "tag" else "tag:KEY" for a in allowed]
    raise GroupingError(f"{value!r} is not one of {', '.join(choices)}")


def org_groups(settings: Settings, orgs: Sequence[str], key: str) -> pl.DataFrame:
    """org, group: each organization's value of tag ``key`` (``UNTAGGED`` without it)."""
    return pl.DataFrame(
        {
            "org": list(orgs),
            "group": [settings.tags_of(o).get(key, UNTAGGED) for o in orgs],
        },
        schema={"org": pl.String, "group": pl.String},
    )


def with_tag(
    frame: pl.DataFrame, settings: Settings, key: str, column: str = "group"
) -> pl.DataFrame:
    """``frame`` with each row's organization's value of tag ``key`` in ``column``."""
    orgs = frame["org"].unique().to_list() if frame.height else []
    groups = org_groups(settings, orgs, key).rename({"group": column})
    return frame.join(groups, on="org", how="left").with_columns(pl.col(column).fill_null(UNTAGGED))


def tags_frame(settings: Settings, orgs: Sequence[str]) -> pl.DataFrame:
    """org and one column per tag key (NULL where an organization lacks the key)."""
    keys = settings.tag_keys()
    data: dict[str, list] = {"org": list(orgs)}
    for k in keys:  # a tag key called "org" keeps its prefix, beside the org column
        data[k if k != "org" else "tag:org"] = [settings.tags_of(o).get(k) for o in orgs]
    return pl.DataFrame(data, schema={name: pl.String for name in data})
