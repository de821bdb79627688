"""Cases: the life of a reported problem (open, deadline, overdue; the workflow of a later issue)."""
