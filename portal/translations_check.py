"""Checks that every message in the source has a Japanese translation that is not fuzzy."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po

from portal.config import ROOT

CATALOGUE = ROOT / "translations" / "ja" / "LC_MESSAGES" / "messages.po"
# How ``pybabel extract`` finds the messages (``portal translations extract`` uses it too).
EXTRACT_OPTIONS = ("-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "--no-location")


def extracted_ids() -> set[str]:
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "babel.messages.frontend",
                "extract",
                *EXTRACT_OPTIONS,
                "-o",
                str(pot),
                ".",
            ],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        with pot.open("rb") as f:
            return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


def problems() -> list[str]:
    if not CATALOGUE.exists():
        return [f"missing {CATALOGUE}"]
    with CATALOGUE.open("rb") as f:
        catalog = read_po(f)
    found = []
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        translated[key] = message
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            found.append(f"untranslated: {key!r}")
        if message.fuzzy:
            found.append(f"fuzzy: {key!r}")
    for key in sorted(extracted_ids() - set(translated)):
        found.append(f"not in the catalogue: {key!r}")
    return found
