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

import re
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


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class Patterns:
    """Texts that a module writes as English strings from a fixed list of patterns (``%(name)s`` where a value
    goes), joined by "; ", and that a page says in its language: :meth:`say` reads a text back against the
    patterns and translates each part it recognises through the catalog; a value that is itself such a text
    is said too, other values (names, numbers) stay as written, and a part no pattern matches is shown as
    written.  For texts kept as plain strings (files, stored routing reasons); new code writes :class:`Text`.
    """

    def __init__(self, templates: Iterable[Any]):
        self.templates = tuple(str(getattr(t, "template", t)) for t in templates)
        compiled = []
        # the most specific first: most fixed words
        for template in sorted(self.templates, key=lambda t: len(_PLACEHOLDER.sub("", t)), reverse=True):
            parts = _PLACEHOLDER.split(template)  # literal, name, literal, ..., literal
            regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
            compiled.append((template, re.compile(f"^{regex}(?:; |$)", re.S)))
        self._compiled = tuple(compiled)

    def say(self, text: object, gettext: Gettext) -> str:
        """``text`` with each recognised part in ``gettext``'s language (None and NaN: an empty text)."""
        rest = "" if text is None or text != text else str(text)
        said = []
        while rest:
            for template, pattern in self._compiled:
                m = pattern.match(rest)
                if m is not None:
                    values = {k: self.say(v, gettext) for k, v in m.groupdict().items()}
                    try:
                        said.append(gettext(template) % values)
                    except (KeyError, ValueError, TypeError):  # a broken translation: the part as written
                        said.append(m.group(0).removesuffix("; "))
                    rest = rest[m.end() :]
                    break
            else:
                part, _, rest = rest.partition("; ")
                said.append(part)
        return "; ".join(said)
