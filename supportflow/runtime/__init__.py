"""Running SupportFlow on one machine: an embedded Redis and a small process supervisor."""
