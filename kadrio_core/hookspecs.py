"""Hook specifications: the whole surface a Kadrio plugin can implement.

Each ``register_*`` hook receives a ``register`` callable; call it once per provider class.
Which provider runs is decided by name from settings, never by registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .providers import Notifier, Payments, Renderer, Selector, Storage, Transcriber

hookspec = pluggy.HookspecMarker("kadrio")
hookimpl = pluggy.HookimplMarker("kadrio")


@hookspec
def register_transcribers(register: Callable[[type[Transcriber]], None]) -> None:
    """Register :class:`~kadrio_core.providers.Transcriber` subclasses (speech to timed words)."""


@hookspec
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    """Register :class:`~kadrio_core.providers.Selector` subclasses (transcript to moments)."""


@hookspec
def register_renderers(register: Callable[[type[Renderer]], None]) -> None:
    """Register :class:`~kadrio_core.providers.Renderer` subclasses (plan to mp4 + captions)."""


@hookspec
def register_storages(register: Callable[[type[Storage]], None]) -> None:
    """Register :class:`~kadrio_core.providers.Storage` subclasses (put/get/url/delete/list)."""


@hookspec
def register_notifiers(register: Callable[[type[Notifier]], None]) -> None:
    """Register :class:`~kadrio_core.providers.Notifier` subclasses (deliver a Message)."""


@hookspec
def register_payments(register: Callable[[type[Payments]], None]) -> None:
    """Register :class:`~kadrio_core.providers.Payments` subclasses (checkout, notifications)."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``kadrio`` command line group."""
