"""The sandbox: a local server speaking the Assistants and Responses APIs, deterministically."""
