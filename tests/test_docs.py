"""The README stays true: every setting is documented, the two set-up commands are there."""

from __future__ import annotations

from pathlib import Path

from courier.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        f"COURIER_{name.upper()}"
        for name in Settings.model_fields
        if f"`COURIER_{name.upper()}`" not in README
    ]
    assert missing == []


def test_readme_has_the_two_commands() -> None:
    assert "pip install -e . && COURIER_MASTER_KEY=change-me courier serve" in README
    assert "pip install -e '.[test]' && pytest" in README
    # CI runs that command's two halves: the install once, then pytest on each database.
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "INSTALL_COMMAND=\"pip install -e '.[test]'\"\n" in ci
    assert 'TEST_COMMAND="pytest"\n' in ci
    assert ci.count('eval "$TEST_COMMAND"') == 2 and 'eval "$INSTALL_COMMAND"' in ci


def test_quick_start_names_the_port() -> None:
    assert "courier serve --port 8000" in README


def test_every_curl_with_brackets_turns_globbing_off() -> None:
    """curl treats ``[...]`` as a pattern and sends nothing unless ``-g`` is given."""
    docs = [README] + [
        p.read_text(encoding="utf-8")
        for p in (Path(__file__).resolve().parent.parent / "docs").glob("*.md")
    ]
    offending = [
        line.strip()
        for text in docs
        for line in text.splitlines()
        if line.lstrip().startswith("curl")
        and "[" in line.split("curl", 1)[1]
        and " -g" not in line
        and "--globoff" not in line
    ]
    assert offending == []
