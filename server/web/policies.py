"""Policy documents kept in the repository (``server/policies/<name>.<lang>.md``), rendered
with the operator's details from settings.

The format is deliberately small: a front matter block (``title``, ``updated`` as YYYY-MM-DD),
then paragraphs, ``## `` headings and ``- `` list items. Placeholders: ``{operator_name}``,
``{operator_status}``, ``{operator_tax_id}``, ``{operator_email}``, ``{website}``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from kadrio_core.settings import Settings

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_FIELDS = ("operator_name", "operator_status", "operator_tax_id", "operator_email", "website")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(_FIELDS) + r")\}")


@dataclass(frozen=True)
class Policy:
    name: str
    lang: str
    title: str
    updated: str
    html: Markup


@functools.cache
def source(name: str, lang: str) -> str:
    if not _NAME.match(name):
        raise FileNotFoundError(name)
    path = resources.files("kadrio_server") / "policies" / f"{name}.{lang}.md"
    if not path.is_file():
        raise FileNotFoundError(f"{name}.{lang}.md")
    return path.read_text("utf-8")


def operator_values(settings: Settings, missing: str) -> dict[str, str]:
    op = settings.operator
    website = op.website or urlsplit(settings.service.public_url).netloc
    values = {
        "operator_name": op.name,
        "operator_status": op.status,
        "operator_tax_id": op.tax_id,
        "operator_email": op.email,
        "website": website,
    }
    return {k: v or missing for k, v in values.items()}


def render(name: str, lang: str, settings: Settings, missing: str = "—") -> Policy:
    """The document ``name`` in ``lang``; FileNotFoundError when there is none."""
    text = source(name, lang)
    meta: dict[str, str] = {}
    if text.startswith("---\n"):
        head, _, text = text[4:].partition("\n---\n")
        for line in head.splitlines():
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    values = operator_values(settings, missing)
    return Policy(
        name=name,
        lang=lang,
        title=meta.get("title", name),
        updated=meta.get("updated", ""),
        html=_blocks(text, values),
    )


def _inline(line: str, values: dict[str, str]) -> str:
    """Escape the text, then put the operator's (escaped) details in."""
    return _PLACEHOLDER.sub(lambda m: str(escape(values[m.group(1)])), str(escape(line)))


def _blocks(text: str, values: dict[str, str]) -> Markup:
    out: list[str] = []
    items: list[str] = []

    def close_list() -> None:
        if items:
            out.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()

    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("- "):
            items.append(_inline(line[2:], values))
            continue
        close_list()
        if not line:
            continue
        if line.startswith("## "):
            out.append(f"<h2>{_inline(line[3:], values)}</h2>")
        else:
            out.append(f"<p>{_inline(line, values)}</p>")
    close_list()
    return Markup("\n".join(out))
