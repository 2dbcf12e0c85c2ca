"""The built-in local storage and outbox notifier, on the real file system."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from kadrio_core.errors import BadInput
from kadrio_core.models import Message
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings


@pytest.fixture
def storage(isolated_settings: Path):
    return registry("storage").create("local", Settings())


def test_put_get_url_list_delete(storage, isolated_settings: Path, tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"\x00" * 1000)
    storage.put("jobs/a1/clip-01.mp4", src)
    storage.put("jobs/a1/clip-01.srt", src)
    storage.put("jobs/b2/clip-01.mp4", src)
    assert (isolated_settings / "storage" / "jobs" / "a1" / "clip-01.mp4").is_file()
    assert list(storage.list("jobs/a1/")) == ["jobs/a1/clip-01.mp4", "jobs/a1/clip-01.srt"]
    got = storage.get("jobs/a1/clip-01.mp4", tmp_path / "back.mp4")
    assert got.read_bytes() == src.read_bytes()
    assert storage.url("jobs/a1/clip-01.mp4").startswith("file:///")
    assert storage.delete("jobs/a1/") == 2
    assert list(storage.list()) == ["jobs/b2/clip-01.mp4"]
    assert storage.delete("jobs/b2/clip-01.mp4") == 1
    assert storage.delete("jobs/b2/clip-01.mp4") == 0
    with pytest.raises(FileNotFoundError):
        storage.get("jobs/b2/clip-01.mp4", tmp_path / "x")


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../x", "a\\b", "", "a/.hidden", "a/"])
def test_keys_cannot_escape_the_root(storage, key: str, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(BadInput, match="invalid storage key"):
        storage.put(key, src)


def test_outbox_writes_an_eml_per_message(isolated_settings: Path) -> None:
    notifier = registry("notifier").create("outbox", Settings())
    ident = notifier.send(
        Message(to="ann@example.org", subject="Ваши клипы готовы", text="3 клипа", html="<p>3</p>")
    )
    files = list((isolated_settings / "outbox").glob("*.eml"))
    assert [f.stem for f in files] == [ident]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["To"] == "ann@example.org"
    assert parsed["Subject"] == "Ваши клипы готовы"
    assert parsed.get_body(("plain",)).get_content().strip() == "3 клипа"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>3</p>"


def test_list_by_partial_name_and_missing_folders(storage, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_text("x")
    for key in ("jobs/a1/clip-01.mp4", "jobs/a1/clip-02.mp4", "jobs/a10/clip-01.mp4", "users/u"):
        storage.put(key, src)
    assert list(storage.list("jobs/a1/clip-0")) == ["jobs/a1/clip-01.mp4", "jobs/a1/clip-02.mp4"]
    assert list(storage.list("jobs/a1")) == [
        "jobs/a1/clip-01.mp4",
        "jobs/a1/clip-02.mp4",
        "jobs/a10/clip-01.mp4",
    ]
    assert list(storage.list("nothing/here/")) == []
    assert len(list(storage.list())) == 4
