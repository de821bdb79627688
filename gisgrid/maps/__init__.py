"""Pure Folium builders, one per page.  Nothing here touches the database or Flask."""
