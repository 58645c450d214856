"""Copy a run folder to S3 (`--mirror s3://bucket/prefix`)."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import urlparse

from opsbook.clients import Env
from opsbook.errors import UsageError


def parse_s3_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UsageError(f"mirror: expected s3://bucket/prefix, got {url!r}")
    return parsed.netloc, parsed.path.strip("/")


def content_type(name: str) -> str:
    """The Content-Type S3 should serve a file with, so a browser shows a mirrored report.

    Without one, S3 serves `binary/octet-stream` and the browser downloads the page.
    """
    known = {".ipynb": "application/json", ".jsonl": "application/json"}
    guessed = known.get(Path(name).suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("json") else guessed


def mirror_run(run_dir: Path, url: str, env: Env) -> list[str]:
    """Upload every file of the run under <prefix>/<env>/<name>/<run folder>/; returns the keys."""
    bucket, prefix = parse_s3_url(url)
    s3 = env.aws("s3")
    rel = Path(*run_dir.parts[-3:])  # <env>/<name>/<timestamp>-<run-id>
    keys = []
    for file in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        key = "/".join(filter(None, [prefix, str(rel), str(file.relative_to(run_dir))]))
        s3.upload_file(str(file), bucket, key, ExtraArgs={"ContentType": content_type(file.name)})
        keys.append(key)
    return keys
