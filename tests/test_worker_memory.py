"""Heavy libraries are loaded on first use, not in every worker (docs/performance.md: memory)."""

from __future__ import annotations

import subprocess
import sys


def test_the_documents_and_calendar_modules_load_without_their_libraries():
    script = (
        "import sys\n"
        "import portal.documents.pdf, plugins.calendar.views, portal.programme.views\n"
        "print(' '.join(m for m in ('reportlab', 'icalendar') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


def test_the_app_starts_without_the_stripe_library():
    """``stripe`` (about 6 MB) is imported when a card payment or webhook needs it."""
    script = (
        "import sys\n"
        "from portal.app import create_app\n"
        "create_app({'DATABASE_URL': 'sqlite://', 'SECRET_KEY': 'x' * 40})\n"
        "print('stripe' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
