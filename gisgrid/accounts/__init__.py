"""People, login and roles: who may see and change what (issue 18).

Pure modules: :mod:`.users` (accounts, passwords, lockout), :mod:`.roles`
(what each role may do), :mod:`.scope` (what a user may see: the one
visibility predicate, as SQL and in memory).  :mod:`.store` alone talks to
PostgreSQL (accounts, grants, the audit log).
"""
