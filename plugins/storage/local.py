"""Files in job-scoped folders under the data directory (``<data dir>/storage`` by default)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import ClassVar

from pydantic import Field

from kadrio_core.errors import BadInput
from kadrio_core.hookspecs import hookimpl
from kadrio_core.providers import ProviderOptions, Storage


class LocalStorageOptions(ProviderOptions):
    root: Path | None = Field(default=None, description="default: <data dir>/storage")


def check_key(key: str, *, prefix: bool = False) -> PurePosixPath:
    """Keys are relative POSIX paths with no '..', no empty and no hidden parts."""
    path = PurePosixPath(key)
    parts = path.parts
    if (
        not key
        or path.is_absolute()
        or "\\" in key
        or "\x00" in key
        or any(p in ("..", ".") or p.startswith(".") for p in parts)
        or (not prefix and key.endswith("/"))
    ):
        raise BadInput(f"invalid storage key: {key!r}")
    return path


class LocalStorage(Storage):
    name = "local"
    description = "folders under the data directory"
    Options: ClassVar[type[ProviderOptions]] = LocalStorageOptions
    options: LocalStorageOptions

    @property
    def root(self) -> Path:
        return (self.options.root or self.settings.data_dir / "storage").resolve()

    def path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).parts)

    def put(self, key: str, path: Path) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)

    def get(self, key: str, dest: Path) -> Path:
        src = self.path(key)
        if not src.is_file():
            raise FileNotFoundError(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    def url(self, key: str, expires: int = 3600) -> str:
        src = self.path(key)
        if not src.is_file():
            raise FileNotFoundError(key)
        return src.as_uri()

    def delete(self, key_or_prefix: str) -> int:
        if key_or_prefix.endswith("/"):
            folder = self.root.joinpath(*check_key(key_or_prefix, prefix=True).parts)
            count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
            shutil.rmtree(folder, ignore_errors=True)
            return count
        target = self.path(key_or_prefix)
        if target.is_file():
            target.unlink()
            return 1
        return 0

    def list(self, prefix: str = "") -> Iterator[str]:
        # walk only the folder the prefix points into, not the whole store
        folder = prefix if prefix.endswith("/") else prefix.rpartition("/")[0]
        base = self.root.joinpath(*check_key(folder, prefix=True).parts) if folder else self.root
        if not base.is_dir():
            return iter(())
        keys = (
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        return iter(sorted(k for k in keys if k.startswith(prefix)))


@hookimpl
def register_storages(register):  # type: ignore[no-untyped-def]
    register(LocalStorage)
