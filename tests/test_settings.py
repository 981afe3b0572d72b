"""Settings: one table of fields, read from a mapping, shown in the README as generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import ROOT, Settings, SettingsError, markdown_table, readme_with_table, table


def test_every_field_has_one_environment_name_and_a_meaning() -> None:
    names = [f.metadata["env"] for f, _ in table()]
    assert len(names) == len(set(names))
    assert all(name.isupper() and f.metadata["doc"] for (f, _), name in zip(table(), names,
                                                                           strict=True))


def test_values_are_read_by_their_type() -> None:
    s = Settings.from_env({
        "LISTEN_PORT": "9000", "MEDIA_LOAD_THRESHOLD": "0.5", "COOKIE_SECURE": "yes",
        "MEDIA_ICE_HOSTS": "192.0.2.1, 192.0.2.2", "STORAGE_ROOT": "/srv/vw",
        "ROUTING_STRATEGY": "random", "REDIS_URL": "",
    })
    assert (s.port, s.media_load_threshold, s.cookie_secure) == (9000, 0.5, True)
    assert s.media_ice_hosts == ("192.0.2.1", "192.0.2.2")
    assert s.storage_root == Path("/srv/vw") and s.routing_strategy == "random"
    assert s.redis_url == Settings().redis_url  # empty means the default


@pytest.mark.parametrize("env", [{"LISTEN_PORT": "eighty"}, {"COOKIE_SECURE": "perhaps"},
                                 {"ROUTING_STRATEGY": "fastest"}])
def test_a_bad_value_names_the_setting(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        Settings.from_env(env)


def test_the_verify_thresholds_are_filled_from_the_table() -> None:
    s = Settings.from_env({"DOC_MIN_BRIGHTNESS": "55", "LIVENESS_TIMEOUT_S": "9"})
    assert s.document.min_brightness == 55 and s.liveness.timeout_s == 9
    assert s.thresholds.document == s.document


def test_the_readme_shows_the_table_as_generated() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_table(readme) == readme, "run `python -m core.settings readme`"
    for f, _ in table():
        assert f"`{f.metadata['env']}`" in markdown_table()
