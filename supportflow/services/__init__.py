"""Use cases and the ports (interfaces) they need from the outside world."""
