"""Coverage audit: where the drawing leaves gaps (没人管), overlaps (多头管), slivers or owner problems."""
