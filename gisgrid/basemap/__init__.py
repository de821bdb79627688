"""The basemap under every map: a tile package (MBTiles) served by gisgrid, and the light basemap drawn from
gisgrid's own layers when no tile service is configured.

``mbtiles`` reads and installs tile packages (SQLite files, read with the standard library); ``store`` reads
the context layers (jurisdiction boundaries, streets) of a map view from PostgreSQL.
"""
