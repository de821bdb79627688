"""Routing a reported point to exactly one owner: rules, the assignment index, files, and its store."""
