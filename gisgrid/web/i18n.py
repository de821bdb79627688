"""Page language: zh-CN by default, English available (``?lang=en`` sets a cookie)."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import Babel


def select_locale() -> str:
    from gisgrid.web import LANGUAGES

    lang = request.args.get("lang") or request.cookies.get("lang")
    if lang in LANGUAGES:
        return lang
    # The office's language is the deployment's choice, not the browser's.
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)

    @app.template_filter("say")
    def _say(value) -> str:
        """``{{ reason | say }}``: a store's :class:`gisgrid.text.Text` in the page's language."""
        from flask_babel import gettext

        from gisgrid.text import translate

        return translate(value, gettext)

    @app.template_filter("roles")
    def _roles(value) -> str:
        """``{{ chain | roles }}``: owner role names (stored in Chinese) in the page's language."""
        return say_roles(value)

    @app.template_filter("routing_reason")
    def _routing_reason(value) -> str:
        """``{{ reason | routing_reason }}``: a stored routing reason (English) in the page's language."""
        return say_routing_reason(value)

    @app.after_request
    def _remember_language(response):
        lang = request.args.get("lang")
        from gisgrid.web import LANGUAGES

        if lang in LANGUAGES:
            response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="Lax")
        return response

    @app.context_processor
    def _languages():
        from flask_babel import get_locale

        from gisgrid.web import LANGUAGES

        loc = str(get_locale())
        return {"languages": LANGUAGES, "current_language": loc, "html_lang": "zh-CN" if loc.startswith("zh") else loc}


def map_language() -> str:
    """The language maps are drawn in for this request: ``"en"`` for English pages, else ``"zh_CN"``."""
    from flask_babel import get_locale

    return "en" if str(get_locale()).startswith("en") else "zh_CN"


def reason(exc: BaseException) -> str:
    """An error's message in the page's language: a gisgrid error's :class:`gisgrid.text.Text` through the
    catalog (its English otherwise); any other exception as its text."""
    from flask_babel import gettext

    translated = getattr(exc, "translated", None)
    if callable(translated):
        return translated(gettext)
    return str(exc)


def api_wants_chinese() -> bool:
    """Whether an API error (Open311, OGC API) is said in Chinese: ``?lang=zh…``, else the first of Chinese or
    English in the request's ``Accept-Language``.  English otherwise: the machine interfaces speak the
    specifications' language unless asked (their field names and codes stay English either way)."""
    lang = request.args.get("lang")
    if lang:
        return lang.lower().startswith("zh")
    for value, _quality in request.accept_languages:  # best first
        primary = value.split("-")[0].split("_")[0].lower()
        if primary in ("zh", "en"):
            return primary == "zh"
    return False


def api_say(message) -> str:
    """An API error's description (a :class:`gisgrid.text.Text`, a gisgrid error or plain text) in the language
    :func:`api_wants_chinese` picks."""
    from flask_babel import force_locale, gettext

    from gisgrid.text import translate

    if not api_wants_chinese():
        return str(message)
    with force_locale("zh_CN"):
        if isinstance(message, BaseException):
            translated = getattr(message, "translated", None)
            return translated(gettext) if callable(translated) else str(message)
        return translate(message, gettext)


def say_routing_reason(value) -> str:
    """A routing reason (English, as the engine stores it) in the page's language
    (:data:`gisgrid.routing.rules.REASONS`)."""
    from flask_babel import gettext

    from gisgrid.routing.rules import REASONS

    return REASONS.say(value, gettext)


def say_geocode_note(value) -> str:
    """A geocoder's note (English, as the matcher writes it) in the page's language
    (:func:`gisgrid.geocode.notes.say_note`)."""
    from flask_babel import gettext

    from gisgrid.geocode.notes import say_note

    return say_note(value, gettext)


def say_roles(value) -> str:
    """A text holding owner role names (a role, a chain "段长 A → 二级街长 B …") with the roles in the page's
    language: English pages say them in English (:data:`gisgrid.ownership.history.ROLE_TEXT`), Chinese pages
    show them as stored."""
    text = "" if value is None else str(value)
    if map_language() != "en" or not text:
        return text
    from flask_babel import gettext

    from gisgrid.ownership.history import say_roles as said

    return said(text, gettext)
