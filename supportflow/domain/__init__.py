"""Domain types, the flow model and the conversation state machine (no I/O frameworks here)."""
