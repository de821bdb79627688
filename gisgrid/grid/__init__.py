"""Unit grids (单元网格): generation (build), editing checks (edit) and their stores."""
