"""Packaging beyond pyproject.toml: the top-level ``migrations/`` and ``translations/`` folders
ship inside the wheel as ``portal/migrations`` and ``portal/translations`` (with the compiled
catalogue), so a non-editable install can run ``portal db upgrade`` and serve ``/ja/``."""

from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

DATA_PACKAGES = {
    "portal.migrations": "migrations",
    "portal.migrations.versions": "migrations/versions",
    "portal.translations": "translations",
}


class BuildWithCatalogue(build_py):
    """Compile translations/*/LC_MESSAGES/messages.po into the build (the .mo is not in git)."""

    def run(self):
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in Path("translations").glob("*/LC_MESSAGES/messages.po"):
            target = Path(self.build_lib, "portal", po.with_suffix(".mo"))
            target.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parts[1])
            with target.open("wb") as f:
                write_mo(f, catalog)


setup(
    packages=find_namespace_packages(include=["portal*", "plugins*"]) + list(DATA_PACKAGES),
    package_dir=DATA_PACKAGES,
    cmdclass={"build_py": BuildWithCatalogue},
)
