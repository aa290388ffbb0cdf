"""PDF checks for tests: text with pdftotext, pages with pdfinfo, a page rendered with pdftoppm
(the machine has no Japanese font pack: the embedded IPAex font must do)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils is not installed",
)


def _write(content: bytes, tmp_path: Path, name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def text(content: bytes, tmp_path: Path, layout: bool = True) -> str:
    args = ["pdftotext", *(["-layout"] if layout else []), str(_write(content, tmp_path)), "-"]
    return subprocess.run(args, capture_output=True, check=True, text=True).stdout


def pages(content: bytes, tmp_path: Path) -> int:
    out = subprocess.run(
        ["pdfinfo", str(_write(content, tmp_path))], capture_output=True, check=True, text=True
    ).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def fonts(content: bytes, tmp_path: Path) -> str:
    return subprocess.run(
        ["pdffonts", str(_write(content, tmp_path))], capture_output=True, check=True, text=True
    ).stdout


def render(content: bytes, tmp_path: Path, page: int = 1, dpi: int = 60):
    """The page as a Pillow image (greyscale)."""
    from PIL import Image

    path = _write(content, tmp_path)
    prefix = tmp_path / f"page{page}"
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            "-singlefile",
            str(path),
            str(prefix),
        ],
        check=True,
        capture_output=True,
    )
    return Image.open(f"{prefix}.png").convert("L")


def ink(image) -> float:
    """Share of pixels that are clearly not white."""
    histogram = image.histogram()
    dark = sum(histogram[:200])
    return dark / (image.width * image.height)
