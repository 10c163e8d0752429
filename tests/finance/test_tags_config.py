"""[[orgs]] tags and keys, tag budgets: validated at load, one line naming file and key."""

from __future__ import annotations

import pytest

from runway_costs.core.config import ConfigError, load_settings

ORG = """
[[orgs]]
name = "acme"
api_key_env = "K"
{extra}
"""


def load(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(config_path=path, env={})


def test_tags_keys_and_tag_budget_load(tmp_path):
    s = load(
        tmp_path,
        ORG.format(
            extra='tags = { team = "growth", cost_center = "CC-104" }\n'
            'keys = { "k-1" = "render farm" }'
        )
        + '\n[[budgets]]\ntag = "team=growth"\nusd = 50\n',
    )
    assert s.tags_of("acme") == {"team": "growth", "cost_center": "CC-104"}
    assert s.tag_keys() == ["cost_center", "team"]
    assert s.org("acme").keys == {"k-1": "render farm"}
    b = s.budgets[0]
    assert (b.org, b.tag_pair, b.monthly_credits(), b.label) == (
        None,
        ("team", "growth"),
        5000,
        "tag team=growth",
    )
    assert s.budget_orgs(b) == ["acme"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("tags = { team = 3 }", "tags.team: must be a string"),
        ('tags = { "bad key" = "x" }', "key 'bad key' must be"),
        ('tags = { team = "" }', "tags.team: must be 1..200 printable"),
        ('tags = "growth"', "tags must be a table"),
        ('keys = { "k" = 1 }', "keys.k: must be a string"),
        (
            'tags = { team = "a" }\n[[budgets]]\ntag = "team=b"\ncredits = 1',
            "no organization in [[orgs]] has tag 'team=b'",
        ),
        ('[[budgets]]\ntag = "team"\ncredits = 1', "tag must be written key=value"),
        ('[[budgets]]\norg = "acme"\ntag = "team=a"\ncredits = 1', "names an org or a tag"),
    ],
)
def test_bad_tags_keys_and_tag_budgets_name_the_key(tmp_path, extra, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, ORG.format(extra=extra))
    assert message in str(err.value)
    assert "c.toml" in str(err.value)


def test_a_tag_budget_without_orgs_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="tags are set on \\[\\[orgs\\]\\]"):
        load(tmp_path, '[[budgets]]\ntag = "team=a"\ncredits = 1\n')
