"""Frontage duty (门前三包): units, their frontages and agreements, import, compliance, signboards."""
