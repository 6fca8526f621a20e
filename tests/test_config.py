"""Configuration: typed sections, unknown keys named, secrets from the environment."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_documents_every_key_with_its_default() -> None:
    data = tomllib.loads((ROOT / "config.example.toml").read_text())
    config = parse_config(data)
    assert config == parse_config({})  # the example states the defaults
    from bot.config import _SECTIONS

    for name, cls in _SECTIONS.items():
        assert set(data[name]) == set(cls.__dataclass_fields__), name


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[index]\npassage_chars = 400\nchunk_size = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key index\.chunk_size"):
        load_config(path)
    path.write_text("[indx]\n")
    with pytest.raises(ConfigError, match=r"unknown section \[indx\]"):
        load_config(path)


def test_bad_values_and_files(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[index]\npassage_chars = "big"\n')
    with pytest.raises(ConfigError, match=r"index\.passage_chars must be int"):
        load_config(path)
    path.write_text("[index\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    path.write_text("[telegram]\nadmin_ids = [1, true]\n")
    with pytest.raises(ConfigError, match=r"telegram.admin_ids\[1\] must be int"):
        load_config(path)


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[telegram]\ntoken = "from-file"\nadmin_ids = [42]\n')
    monkeypatch.setenv("COVERBOT_CONFIG", str(path))
    monkeypatch.setenv("COVERBOT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TELEGRAM_TOKEN", "from-env")
    config = load_config()
    assert config.telegram.token == "from-env"
    assert config.telegram.admin_ids == (42,)
    assert config.data_dir == tmp_path / "d"


def test_sources_and_refresh_sections() -> None:
    config = parse_config(
        {
            "refresh": {"interval_minutes": 15, "allow_private_addresses": True},
            "sources": [
                {"kind": "wordpress", "url": "https://news.example.com/", "name": "Main"},
                {"kind": "sitemap", "url": "https://news.example.com/sitemap.xml"},
            ],
        }
    )
    assert [(s.kind, s.name) for s in config.sources] == [("wordpress", "Main"), ("sitemap", "")]
    assert config.refresh.fetch_settings().allow_private is True
    with pytest.raises(ConfigError, match=r"sources\[0\]\.kind 'blog' is not one of"):
        parse_config({"sources": [{"kind": "blog", "url": "https://x.example/"}]})
    with pytest.raises(ConfigError, match=r"sources\[0\]\.url is missing"):
        parse_config({"sources": [{"kind": "feed"}]})
    with pytest.raises(ConfigError, match=r"unknown key sources\[0\]\.every"):
        parse_config({"sources": [{"kind": "feed", "url": "https://x.example/", "every": 5}]})
    with pytest.raises(ConfigError, match="interval_minutes must be at least 1"):
        parse_config({"refresh": {"interval_minutes": 0}})
