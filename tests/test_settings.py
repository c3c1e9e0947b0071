"""Settings: every WALLET_* variable checked at start with a message naming it, and the docs' table
of them generated from their declarations."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from wallet.cli import parser
from wallet.settings import (
    DOCUMENTS,
    SETTINGS,
    Settings,
    SettingsError,
    describe,
    main,
    markdown_table,
    with_table,
)

REPOSITORY = Path(__file__).resolve().parent.parent


# Amounts for which zero means "no minimum"; every other number is a limit and must be positive.
MAY_BE_ZERO = {"settlement_min_amount"}


def bad_values(name: str, default: object) -> list[str]:
    if isinstance(default, bool):
        return ["maybe"]
    if isinstance(default, int):
        return ["-1", "ten"] if name in MAY_BE_ZERO else ["0", "-1", "ten"]
    if name == "verification_keys":
        return ["/no/such/key.pem"]
    if name == "event_loop":
        return ["   ", "tokio", "Asyncio"]
    return ["   "]


@pytest.mark.parametrize("field", [field.name for field in fields(Settings)])
def test_every_setting_refuses_a_bad_value_naming_its_variable(field: str, tmp_path: Path) -> None:
    variable = f"WALLET_{field.upper()}"
    default = Settings.__dataclass_fields__[field].default
    for raw in bad_values(field, default):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({"WALLET_DB": str(tmp_path / "wallet.db"), variable: raw})


def test_settings_refuse_a_value_of_the_wrong_type_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="WALLET_PORT"):
        replace(Settings(), port="8080").validate()  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="WALLET_DB"):
        Settings.from_env({"WALLET_DB": str(tmp_path)})
    with pytest.raises(SettingsError, match="WALLET_HOST"):
        Settings.from_env({"WALLET_HOST": "local host"})


def test_the_defaults_are_valid() -> None:
    Settings().validate()


def test_the_uvloop_event_loop_needs_uvloop_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *rest: None if name == "uvloop" else real(name, *rest)
    )
    with pytest.raises(SettingsError, match="WALLET_EVENT_LOOP=uvloop needs the uvloop package"):
        Settings.from_env({"WALLET_EVENT_LOOP": "uvloop"})
    assert Settings.from_env({"WALLET_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"


def run_cli(*arguments: str, tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WALLET_")}
    env.update(
        WALLET_DB=str(tmp_path / "wallet.db"),
        WALLET_SIGNING_KEY=str(tmp_path / "key.pem"),
        WALLET_SMS_OUTBOX=str(tmp_path / "sms.jsonl"),
        **environment,
    )
    return subprocess.run(
        [sys.executable, "-m", "wallet", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
    )


def test_serve_exits_2_naming_a_bad_variable_or_option(tmp_path: Path) -> None:
    completed = run_cli("serve", tmp_path=tmp_path, WALLET_WRITER_STALL_SECONDS="0")
    assert completed.returncode == 2, completed.stderr
    assert "WALLET_WRITER_STALL_SECONDS" in completed.stderr
    completed = run_cli("serve", "--port", "0", tmp_path=tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert "--port" in completed.stderr
    assert not (tmp_path / "wallet.db").exists(), "nothing is created with a bad setting"


def test_the_configuration_doc_and_the_help_list_every_variable() -> None:
    doc = (REPOSITORY / "docs" / "configuration.md").read_text()
    rows = {match[0]: match[1] for match in re.findall(r"^\| `(WALLET_[A-Z_]+)` \| ([^|]*) \|", doc, re.MULTILINE)}
    help_text = parser().format_help()
    readme = (REPOSITORY / "README.md").read_text()
    for variable, default in describe():
        assert variable in rows, f"docs/configuration.md does not list {variable}"
        assert f"`{variable}`" in readme, f"README.md's configuration table does not list {variable}"
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        if shown:
            assert f"`{shown}`" in rows[variable], f"{variable}: the doc's default is not {shown}"
        else:
            assert rows[variable].strip() in ("(none)", "(empty)"), variable
        assert variable in help_text


def test_the_settings_tables_in_the_docs_are_the_generated_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """README.md and docs/configuration.md carry the table made from wallet/settings.py's declarations,
    one row per setting, each with its help; ``python -m wallet.settings --update`` rewrites them."""
    assert all(declared.help.strip() for declared in SETTINGS)
    assert main(["--markdown"]) == 0
    printed = capsys.readouterr().out
    assert printed == markdown_table()
    assert len(printed.splitlines()) == 2 + len(fields(Settings))
    for name in DOCUMENTS:
        document = (REPOSITORY / name).read_text(encoding="utf-8")
        assert with_table(document) == document, (
            f"{name}'s settings table is stale: run python -m wallet.settings --update"
        )
