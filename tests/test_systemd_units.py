"""The systemd units of ``docs/operations.md`` are checked, not only read: each one is taken
from the page, its paths pointed at this checkout, verified by ``systemd-analyze verify`` (no
unknown key, an executable ExecStart), and its command line parsed by the program it starts
(an option that does not exist fails). The test machine runs no systemd, but it has the
verifier (issue #13)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portal.config import ROOT

DOC = Path(ROOT) / "docs/operations.md"
UNIT = re.compile(r"`/etc/systemd/system/(portal-[a-z]+\.service)`[^\n]*\n+```ini\n(.*?)```", re.S)
BIN = Path(sys.executable).parent


def _units() -> dict[str, str]:
    return dict(UNIT.findall(DOC.read_text()))


def test_the_page_has_the_three_units():
    assert sorted(_units()) == [
        "portal-scheduler.service",
        "portal-web.service",
        "portal-worker.service",
    ]


def _localised(text: str, tmp_path: Path) -> str:
    env = tmp_path / "portal.env"
    env.write_text("PORTAL_ENV=production\n")
    user = os.environ.get("USER") or "root"
    return (
        text.replace("/srv/portal/venv/bin/", f"{BIN}/")
        .replace("/etc/portal/portal.env", str(env))
        .replace("/var/lib/portal", str(tmp_path))
        .replace("User=portal", f"User={user}")
        .replace("Group=portal", f"Group={user}")
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize(
    "name", ["portal-web.service", "portal-worker.service", "portal-scheduler.service"]
)
def test_unit_verifies(name, tmp_path):
    path = tmp_path / name
    path.write_text(_localised(_units()[name], tmp_path))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "Failed to connect to bus" not in line and "/etc/passwd" not in line
    ]
    assert (result.returncode, problems) == (0, [])


def _exec_start(text: str) -> list[str]:
    line = re.search(r"^ExecStart=(.*?)(?<!\\)$", text.replace("\\\n", " "), re.M).group(1)
    return shlex.split(line)


@pytest.mark.parametrize("name", ["portal-worker.service", "portal-scheduler.service"])
def test_portal_commands_take_the_units_options(name, tmp_path):
    argv = _exec_start(_localised(_units()[name], tmp_path))
    assert argv[0] == f"{BIN}/portal"
    result = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_gunicorn_loads_the_units_app_with_its_options(tmp_path):
    argv = _exec_start(_localised(_units()["portal-web.service"], tmp_path))
    assert argv[0] == f"{BIN}/gunicorn"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")} | {
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/check.db"
    }
    result = subprocess.run(
        [*argv, "--check-config"], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
