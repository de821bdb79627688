"""The search box of every map: a street, a segment, a grid cell, a person or a case, by what a user types.

``store.search_units`` reads the database, limited to what the user sees (:mod:`gisgrid.accounts.scope`);
addresses are found by the geocoder (:mod:`gisgrid.geocode`), which the web layer asks beside it.
"""
