"""Portal: a bilingual portal for the Rare Metal Study Group and the Reactive Metal Workshop."""

from portal.app import create_app

__all__ = ["create_app"]
