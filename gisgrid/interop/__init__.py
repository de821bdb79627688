"""Other systems: Open311 GeoReport v2 (reports in and out) and OGC API – Features (every layer).

Pure modules (:mod:`~gisgrid.interop.open311`, :mod:`~gisgrid.interop.features`)
say what the standards ask; the stores (:mod:`~gisgrid.interop.open311_store`,
:mod:`~gisgrid.interop.features_store`) read the database, always through the
caller's scope (:mod:`gisgrid.accounts.scope`).
"""
