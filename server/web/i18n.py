"""Russian and English: message catalogs, choosing the language, dates and numbers per locale.

Catalogs are ``server/locales/<lang>.json``: flat keys -> text with ``{name}`` placeholders, or,
for counted phrases, an object of CLDR plural forms (``one``, ``few``, ``many``, ``other``)
chosen by Babel's plural rules for the language.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from ..schemas import LANGUAGES

DEFAULT_LANGUAGE = "en"


@functools.cache
def catalog(lang: str) -> dict[str, Any]:
    """``<lang>.json`` and the parts other modules keep beside it (``<lang>.<part>.json``)."""
    folder = resources.files("kadrio_server") / "locales"
    merged: dict[str, Any] = json.loads((folder / f"{lang}.json").read_text("utf-8"))
    parts = sorted(e.name for e in folder.iterdir() if re.fullmatch(rf"{lang}\.\w+\.json", e.name))
    for name in parts:
        part = json.loads((folder / name).read_text("utf-8"))
        clash = set(part) & set(merged)
        if clash:
            raise ValueError(f"{name} repeats keys: {', '.join(sorted(clash))}")
        merged.update(part)
    return merged


def supported(lang: str | None) -> str | None:
    """``lang`` when it is one of ours (``ru-RU`` counts as ``ru``), else None."""
    if not lang:
        return None
    base = lang.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in LANGUAGES else None


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an Accept-Language header (q-values honoured)."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = supported(tag)
        if lang and quality > 0:
            choices.append((-quality, position, lang))
    return min(choices)[2] if choices else DEFAULT_LANGUAGE


class Translator:
    """Texts, dates and numbers for one language; templates get it as ``t`` and ``fmt``."""

    def __init__(self, lang: str, timezone: str = "UTC") -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unsupported language {lang!r}")
        self.lang = lang
        self.tz = ZoneInfo(timezone)

    def __call__(self, key: str, **values: Any) -> str:
        text = catalog(self.lang).get(key)
        if text is None:
            raise KeyError(f"no text {key!r} in the {self.lang} catalog")
        if isinstance(text, dict):
            text = self._plural(text, values.get("count", 0))
        if values:
            values = {k: self.number(v) if _is_count(k, v) else v for k, v in values.items()}
            return text.format(**values)
        return text

    def has(self, key: str) -> bool:
        return key in catalog(self.lang)

    def _plural(self, forms: dict[str, str], count: Any) -> str:
        from babel import Locale

        form = Locale.parse(self.lang).plural_form(abs(count))
        return forms.get(form) or forms["other"]

    def language_name(self, code: str) -> str:
        """``ru`` as "Russian" or "русский", in this language."""
        from babel import Locale

        return Locale.parse(self.lang).languages.get(code, code)

    # -- formatting ------------------------------------------------------------------------

    def number(self, value: float | int, digits: int = 0) -> str:
        from babel.numbers import format_decimal

        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.lang)

    def value(self, value: Any) -> str:
        """A setting's value for people: numbers in this locale (no needless ".0")."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return self.number(value, 0 if float(value).is_integer() else 1)

    def size(self, size: int | None) -> str:
        if size is None:
            return "—"
        units = ("unit.bytes", "unit.kb", "unit.mb", "unit.gb", "unit.tb")
        value, unit = float(size), 0
        while value >= 1024 and unit < len(units) - 1:
            value, unit = value / 1024, unit + 1
        digits = 0 if unit == 0 or value >= 100 or round(value, 1).is_integer() else 1
        return self(units[unit], value=self.number(value, digits))

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        total = round(seconds)
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}:{minutes:02d}:{secs:02d}"
        return f"{minutes}:{secs:02d}"

    def datetime(self, value: datetime | None) -> str:
        from babel.dates import format_datetime

        if value is None:
            return "—"
        text = format_datetime(value, "d MMM y, HH:mm", tzinfo=self.tz, locale=self.lang)
        return f"{text} {self._zone(value)}"

    def date(self, value: datetime | None) -> str:
        from babel.dates import format_date

        if value is None:
            return "—"
        return format_date(value.astimezone(self.tz).date(), "long", locale=self.lang)

    def iso_date(self, value: str) -> str:
        """A policy's ``updated: YYYY-MM-DD`` as a long date."""
        from babel.dates import format_date

        return format_date(datetime.fromisoformat(value).date(), "long", locale=self.lang)

    def _zone(self, value: datetime) -> str:
        return value.astimezone(self.tz).tzname() or str(self.tz)


def _is_count(key: str, value: Any) -> bool:
    return key == "count" and isinstance(value, int | float) and not isinstance(value, bool)
