"""Who owns what on a day: the owner history and the 段长 → 二级街长 → 一级街长 → 总街长 chain."""
