"""Files behind one interface: a local folder and S3 (moto's server on loopback, via boto3),
tied to the database transaction in one place."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa

from portal import storage
from portal.app import create_app
from portal.db import db
from tests.fakes import s3_server

s3_endpoint = s3_server.s3_endpoint  # fixtures
s3_bucket = s3_server.s3_bucket


@pytest.fixture(params=["local", "s3"])
def files_app(request, app_config, tmp_path):
    config = dict(app_config)
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        config.update(STORAGE_URL=f"s3://{bucket}/portal", S3_ENDPOINT_URL=endpoint)
    app = create_app(config)
    yield app
    app.extensions["portal_db"]["engine"].dispose()


def test_save_read_send_and_delete(files_app):
    with files_app.test_request_context("/"):
        backend = storage.storage()
        backend.save("speakers/a.jpg", b"\xff\xd8photo", "image/jpeg")
        assert backend.read("speakers/a.jpg") == b"\xff\xd8photo"
        assert backend.exists("speakers/a.jpg")
        assert backend.read("speakers/missing.jpg") is None
        assert not backend.exists("speakers/missing.jpg")
        assert backend.keys("speakers") == ["speakers/a.jpg"]
        response = backend.send("speakers/a.jpg", "image/jpeg")
        response.direct_passthrough = False
        assert (response.mimetype, response.get_data()) == ("image/jpeg", b"\xff\xd8photo")
        assert backend.send("speakers/missing.jpg", "image/jpeg") is None
        backend.delete("speakers/a.jpg")
        assert backend.read("speakers/a.jpg") is None
        backend.check()
        for bad in ("../etc/passwd", "/etc/passwd", "a//b", ""):
            with pytest.raises(ValueError):
                backend.read(bad)


def test_a_new_file_is_removed_on_rollback_and_a_replaced_one_after_commit(files_app):
    with files_app.app_context():
        backend = storage.storage()
        backend.save("archive/old.pdf", b"old", "application/pdf")
        session = db.session
        session.execute(sa.text("SELECT 1"))  # a transaction is open, as in a request
        storage.save(session, "archive/new.pdf", b"new", "application/pdf")
        storage.remove_after_commit(session, "archive/old.pdf")
        session.rollback()
        assert backend.keys("archive") == ["archive/old.pdf"]  # the new one is gone, old kept

        storage.save(session, "archive/new.pdf", b"new", "application/pdf")
        storage.remove_after_commit(session, "archive/old.pdf")
        session.commit()
        assert backend.keys("archive") == ["archive/new.pdf"]


def test_s3_files_live_in_the_bucket_under_the_prefix(app_config, s3_endpoint, s3_bucket):
    app = create_app(
        dict(app_config, STORAGE_URL=f"s3://{s3_bucket}/portal", S3_ENDPOINT_URL=s3_endpoint)
    )
    with app.app_context():
        assert storage.storage().kind == "s3"
        storage.storage().save("abstracts/x.pdf", b"%PDF", "application/pdf")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    [obj] = client.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert obj["Key"] == "portal/abstracts/x.pdf"
    head = client.head_object(Bucket=s3_bucket, Key="portal/abstracts/x.pdf")
    assert head["ContentType"] == "application/pdf"
    assert not Path(app.config["UPLOAD_FOLDER"], "abstracts").exists()
    app.extensions["portal_db"]["engine"].dispose()


def test_a_storage_url_that_is_not_s3_is_refused(app_config):
    with pytest.raises(storage.StorageError):
        create_app(dict(app_config, STORAGE_URL="ftp://files"))
