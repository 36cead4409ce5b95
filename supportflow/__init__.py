"""SupportFlow: customer-support chats run as a state machine against an OpenAI assistant."""

__version__ = "0.1.0"
