"""Heavy libraries are loaded on first use, not in every worker (docs/performance.md: memory)."""

from __future__ import annotations

import subprocess
import sys


def test_a_fresh_worker_does_not_load_the_pdf_and_calendar_libraries(app_config):
    script = (
        "import sys\n"
        "from portal.app import create_app\n"
        f"create_app({{'SECRET_KEY': 'x', 'DATABASE_URL': {app_config['DATABASE_URL']!r},"
        " 'TESTING': True})\n"
        "print(' '.join(m for m in ('reportlab', 'icalendar') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
