"""Gettext catalogues (Babel) for the portal's two languages.

The `.po` files under `locale/` are the source (English msgids, zh_CN translations); the
`.mo` files are compiled from them by `scripts/install` and again at start when missing or
older than their `.po`. The current request's language lives in a context variable so the
one Jinja2 environment serves both languages.
"""

from __future__ import annotations

import contextvars
from pathlib import Path

from babel.support import NullTranslations, Translations

from shared import i18n as shared_i18n

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT = "zh_CN"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("portal_locale", default=DEFAULT)
_catalogues: dict[str, NullTranslations] = {}


def compile_catalogues() -> None:
    """Compile each `.po` whose `.mo` is missing or older (idempotent, cheap)."""
    shared_i18n.compile_catalogues(LOCALE_DIR)


def load_catalogues() -> None:
    compile_catalogues()
    for lang in LANGUAGES:
        _catalogues[lang] = Translations.load(str(LOCALE_DIR), [lang], domain="messages")


def set_locale(lang: str) -> None:
    _current.set(lang if lang in LANGUAGES else DEFAULT)


def get_locale() -> str:
    return _current.get()


def _t() -> NullTranslations:
    return _catalogues.get(_current.get()) or NullTranslations()


def gettext(message: str) -> str:
    return _t().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _t().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return str(_t().pgettext(context, message))
