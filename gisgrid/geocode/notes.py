"""The geocoder's notes in a page's language.

The matcher (:mod:`gisgrid.geocode.match`) writes its notes in English: the
command line, the files it writes and the logs read them as they are.  A page
says them in its own language through :func:`say_note`, which reads a note
back against :data:`NOTES`, the one list of the matcher's note patterns, and
translates each part it recognises through the page's catalog; the values in a
note (street names, numbers, areas) stay as written.  A part no pattern
matches is shown as written.  ``tests/geocode/test_notes.py`` holds every note
the matcher writes on the sample towns to this list.
"""

from __future__ import annotations

from gisgrid.text import N_, Gettext, Patterns

#: Every note pattern of the matcher (and of the clerk's placing on the geocoding page), ``%(name)s`` where
#: a value goes.  Notes are joined by "; "; a pattern may hold "; " itself.
NOTES = Patterns(
    (
        N_("empty address"),
        N_("placed in %(area)s"),
        N_("written as %(relation)s of the place"),
        N_("the address has %(length)s characters; addresses of at most %(most)s are read: shorten it"),
        N_("from the part in brackets %(text)s"),
        N_("read as an address in %(place)s: %(why)s"),
        N_("could also be read as an address in %(place)s, which the gazetteer does not cover"),
        N_("%(place)s is a town outside the gazetteer's area (%(towns)s)"),
        N_("%(area)s is not a known area; searched everywhere"),
        N_("address is in %(area)s, outside the gazetteer's area (%(known)s)"),
        N_("%(name)s (%(area)s) is not an area of the gazetteer (%(known)s)"),
        N_("%(names)s is not among the jurisdictions; searched all of %(area)s"),
        N_("%(name)s is not a known street; the nearest name differs: %(change)s"),
        N_("no %(street)s inside %(area)s; took the one in %(other)s"),
        N_(
            "%(n)s streets named %(street)s (%(where)s); took the first: write the town or community before the "
            "street to choose"
        ),
        N_("in different places"),
        N_("the name stands for %(n)s streets (%(names)s); took %(street)s"),
        N_("street name matched %(how)s (%(score)s/100)"),
        N_("fuzzy"),
        N_("base"),
        N_("landmark %(name)s not found"),
        N_("street midpoint"),
        N_("street %(name)s not found"),
        N_("streets %(a)s and %(b)s not found"),
        N_("crossing street %(name)s not found"),
        N_("%(part)s part of the street"),
        N_("junction on the street, crossing street not named"),
        N_("no %(key)s on record; used another address with number %(n)s"),
        N_("number %(n)s inside range %(lo)s-%(hi)s"),
        N_("no house numbers known on %(street)s"),
        N_("no numbers known on this side"),
        N_("only number %(m)s known on %(street)s; number %(n)s placed there"),
        N_("between %(lo)s and %(hi)s (other side) along the centerline"),
        N_("between %(lo)s and %(hi)s along the centerline"),
        N_("between %(lo)s and %(hi)s"),
        N_("number %(n)s beyond known range %(lo)s-%(hi)s on %(street)s"),
        N_("extrapolated"),
        N_("clamped to the end of the street"),
        N_("placed at number %(m)s"),
        N_("placed on the map by a clerk"),
        N_("the streets do not meet"),
        N_("%(m)s m apart"),
        N_("%(a)s and %(b)s do not meet"),
        # how a near name differs from the written one (gisgrid.geocode.parse), inside "the nearest name differs"
        N_("street type %(written)s written, %(type)s in %(street)s"),
        N_("%(written)s written, %(marks)s in %(street)s"),
        N_("the word %(word)s written has no counterpart in %(street)s"),
        N_("the word %(word)s in %(street)s has no counterpart in %(written)s"),
        N_("no direction or number"),
        N_("none"),
        N_("landmark"),
        # a place's relation to its landmark (gisgrid.geocode.parse.RELATIONS), inside "written as … of the place"
        N_("opposite"),
        N_("beside"),
        N_("near"),
        N_("gate"),
        N_("behind"),
        N_("inside"),
    )
)


def say_note(note: object, gettext: Gettext) -> str:
    """``note`` (one or several of the matcher's notes joined by "; ") with each part in ``gettext``'s
    language; values inside (a note in a note's value, such as the reason in "read as an address in …: …",
    too) translated the same way, names as written."""
    return NOTES.say(note, gettext)
