"""Report statistics and hotspots for managers: pure analysis (hotspots) and its queries (store)."""
