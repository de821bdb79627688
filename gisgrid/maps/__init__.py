"""Pure Folium builders, one module per page.  Nothing here touches the database or Flask.

``ownership`` (home page), ``manager`` (/map), ``audit`` (/audit), ``geocode``
(a geocoding job), ``plan`` (the editor's base); shared parts in ``_base``
(base map, chrome, the page language's labels, rendering into template parts)
and ``assets`` (vendored Leaflet files, offline pages).  Builders take
GeoDataFrames and plain values plus a language and return a :class:`folium.Map`.
"""

from gisgrid.maps._base import LANGUAGES, base_map, language, map_parts, render, translator
from gisgrid.maps.assets import use_local_assets

__all__ = ["LANGUAGES", "base_map", "language", "map_parts", "render", "translator", "use_local_assets"]
