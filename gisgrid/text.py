"""Words for people, written once in English by the pure modules and said in the page's language where shown.

A store or a checker cannot know the page's language (it has no request, and
the command line and the tests read it too), so it writes its reasons with
:func:`N_`: a :class:`Text` *is* the English sentence (``str(text)``, logs,
the CLI and existing callers see English), and remembers its template and
values, so that the web layer can say it again through the catalog
(:func:`translate` with Flask-Babel's ``gettext``)::

    problems.append(N_("%(label)s must be a number, not %(value)r", label="lon", value="abc"))
    raise InputError(N_.join("; ", problems))

``pybabel extract -k N_`` and ``tests/web/test_translations.py`` find the
templates like any ``_()``; their Chinese is in ``messages.po``.  Values that
are themselves :class:`Text` are translated too; other values are kept as
given (names, numbers and what the user typed are not translated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Gettext = Callable[[str], str]


class Text(str):
    """An English text that can say itself in another language (see the module)."""

    template: str
    params: dict[str, Any]
    parts: tuple[str, tuple[Any, ...]] | None

    def __new__(cls, template: str, /, **params: Any) -> Text:
        obj = super().__new__(cls, template % params if params else template)
        obj.template = template
        obj.params = params
        obj.parts = None
        return obj

    @classmethod
    def join(cls, sep: str, items: Iterable[Any]) -> Text:
        """``sep.join(items)`` that keeps each item's translation (``sep`` itself is not translated)."""
        items = tuple(items)
        obj = super().__new__(cls, sep.join(str(i) for i in items))
        obj.template = str(obj)
        obj.params = {}
        obj.parts = (sep, items)
        return obj

    def translate(self, gettext: Gettext) -> str:
        if self.parts is not None:
            sep, items = self.parts
            return sep.join(translate(i, gettext) for i in items)
        said = gettext(self.template)
        if not self.params:
            return said
        values = {k: (translate(v, gettext) if isinstance(v, Text) else v) for k, v in self.params.items()}
        try:
            return said % values
        except (KeyError, ValueError, TypeError):  # a broken translation: the English, never an error page
            return str(self)


def N_(template: str, /, **params: Any) -> Text:  # noqa: N802 - the usual name of a deferred gettext
    """A reason or label said in English now and translated where it is shown (see the module)."""
    return Text(template, **params)


N_.join = Text.join  # type: ignore[attr-defined]


def translate(value: Any, gettext: Gettext) -> str:
    """``value`` in the language of ``gettext``: a :class:`Text` through the catalog, anything else as text."""
    if isinstance(value, Text):
        return value.translate(gettext)
    return "" if value is None else str(value)
