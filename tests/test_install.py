"""The documented install: a built wheel, installed without the checkout, upgrades the
database and serves Japanese pages (migrations and translations ship inside the package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portal.config import ROOT

SNIPPET = """
import portal
from portal.app import create_app
assert portal.__file__.startswith({target!r}), portal.__file__
app = create_app()
r = app.test_client().get("/ja/account/login")
assert r.status_code == 200, r.status_code
assert "ログイン" in r.text, r.text[:500]
print("served /ja/ from", portal.__file__)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    wheels = tmp / "wheels"
    leftovers = [p for p in (ROOT / "build", ROOT / "portal.egg-info") if not p.exists()]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    for path in leftovers:  # pip builds in the tree; leave it as it was
        shutil.rmtree(path, ignore_errors=True)
    if build.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{build.stderr[-3000:]}")
    [wheel] = wheels.glob("portal-*.whl")
    target = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return target


def _run(target: Path, cwd: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(target), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_wheel_installed_without_the_checkout_upgrades_the_database_and_speaks_japanese(
    installed, tmp_path
):
    assert (installed / "portal" / "migrations" / "env.py").is_file()
    assert (installed / "portal" / "translations" / "ja" / "LC_MESSAGES" / "messages.mo").is_file()
    assert not (installed / "migrations").exists()
    env = {
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    upgrade = _run(
        installed, tmp_path, "-c", "from portal.cli import main; main()", "db", "upgrade", env=env
    )
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    assert "Database is at head." in upgrade.stdout
    served = _run(installed, tmp_path, "-c", SNIPPET.format(target=str(installed)), env=env)
    assert served.returncode == 0, served.stderr[-3000:]
    assert "served /ja/ from" in served.stdout


def test_the_lock_file_pins_every_dependency_exactly():
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact version: {line}"
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pinned, f"{name} is not in requirements.lock"
