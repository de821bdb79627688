"""Supervision: inspection rounds, indicators, rankings and the bulletin (一月一督查、一月一暗访、一季一排名)."""
