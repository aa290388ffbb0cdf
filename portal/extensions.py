"""The Flask extensions, created once and bound to the app in ``create_app``.

Import them from here (plugins too), never from ``portal.app``: ``csrf`` (``csrf.exempt`` for
webhooks), ``login_manager`` (``login_manager.unauthorized()``) and ``babel``.
"""

from __future__ import annotations

from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()
