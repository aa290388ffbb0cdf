"""Files (speaker photos, abstracts, archive files, generated documents) behind one interface.

``PORTAL_STORAGE_URL`` chooses the backend: empty → a local folder (``PORTAL_UPLOAD_FOLDER``,
what ``make run`` uses); ``s3://bucket`` or ``s3://bucket/prefix`` → S3-compatible object
storage through boto3 (AWS S3, MinIO, Ceph; ``PORTAL_S3_ENDPOINT_URL`` for non-AWS, credentials
from the usual ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or an instance role).

Keys are relative paths such as ``speakers/3f2a….jpg``. Writing a file is tied to the
database transaction in one place: ``save(session, …)`` removes the new file again if the
transaction rolls back, ``remove_after_commit(session, key)`` removes an old one only once
the change that replaced it is committed.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, Response, current_app, send_file
from sqlalchemy.orm import Session

log = logging.getLogger("portal.storage")

_ADDED = "storage_added"
_REMOVE = "storage_remove"


class StorageError(RuntimeError):
    pass


def _clean_key(key: str) -> str:
    parts = key.split("/")
    if not key or "\\" in key or any(p in ("..", ".", "") for p in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class LocalStorage:
    kind = "local"

    def __init__(self, folder: str | Path):
        self.root = Path(folder)

    def path(self, key: str) -> Path:
        return self.root / _clean_key(key)

    def save(self, key: str, data: bytes, content_type: str = "application/octet-stream"):
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data)
        tmp.replace(path)

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def send(self, key: str, mimetype: str, **kwargs) -> Response | None:
        path = self.path(key)
        if not path.is_file():
            return None
        return send_file(path, mimetype=mimetype, conditional=True, **kwargs)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / ".healthz"
        probe.write_bytes(b"ok")
        probe.unlink()


class S3Storage:
    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str = "", region: str = ""):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=Config(
                connect_timeout=3,
                read_timeout=20,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"} if endpoint_url else {},
            ),
        )

    def _key(self, key: str) -> str:
        key = _clean_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def save(self, key: str, data: bytes, content_type: str = "application/octet-stream"):
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
        )

    def read(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        return obj["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str = "") -> list[str]:
        full = self._key(prefix) if prefix else self.prefix
        start = len(self.prefix) + 1 if self.prefix else 0
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            found += [obj["Key"][start:] for obj in page.get("Contents", [])]
        return sorted(found)

    def send(self, key: str, mimetype: str, **kwargs) -> Response | None:
        data = self.read(key)
        if data is None:
            return None
        kwargs.setdefault("etag", False)
        response = send_file(io.BytesIO(data), mimetype=mimetype, **kwargs)
        response.content_length = len(data)
        return response

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def make_storage(config) -> LocalStorage | S3Storage:
    url = config.get("STORAGE_URL") or ""
    if not url:
        return LocalStorage(config["UPLOAD_FOLDER"])
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(f"PORTAL_STORAGE_URL must be empty or s3://bucket[/prefix], not {url!r}")
    return S3Storage(
        parts.netloc,
        parts.path,
        endpoint_url=config.get("S3_ENDPOINT_URL") or "",
        region=config.get("S3_REGION") or "",
    )


def init_app(app: Flask) -> None:
    app.extensions["portal_storage"] = make_storage(app.config)


def storage() -> LocalStorage | S3Storage:
    ext = current_app.extensions.get("portal_storage")
    # Tests change UPLOAD_FOLDER after create_app; follow it for the local backend.
    if isinstance(ext, LocalStorage) and str(ext.root) != str(current_app.config["UPLOAD_FOLDER"]):
        ext = current_app.extensions["portal_storage"] = make_storage(current_app.config)
    return ext


# -- tied to the transaction -----------------------------------------------------------------


def save(session: Session, key: str, data: bytes, content_type: str) -> str:
    """Store a new file; it is removed again if the session's transaction rolls back."""
    backend = storage()
    backend.save(key, data, content_type)
    session.info.setdefault(_ADDED, []).append((backend, key))
    return key


def remove_after_commit(session: Session, key: str | None) -> None:
    """Remove a file once the change that dropped or replaced it is committed."""
    if key:
        session.info.setdefault(_REMOVE, []).append((storage(), key))


def _delete_quietly(backend, key: str) -> None:
    try:
        backend.delete(key)
    except Exception:  # a leftover file is harmless; the request must not fail for it
        log.warning("could not remove stored file %s", key, exc_info=True)


@sa.event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_ADDED, None)
    for backend, key in session.info.pop(_REMOVE, []):
        _delete_quietly(backend, key)


@sa.event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, _previous_transaction) -> None:
    session.info.pop(_REMOVE, None)
    for backend, key in session.info.pop(_ADDED, []):
        _delete_quietly(backend, key)
