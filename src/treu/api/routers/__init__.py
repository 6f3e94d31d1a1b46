"""One router per resource family; every route declares the permission it needs."""
