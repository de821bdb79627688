"""Streets and segments: frontage areas from centerlines (segments) and their store."""
