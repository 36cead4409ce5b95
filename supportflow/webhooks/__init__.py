"""Helpdesk webhooks: Standard Webhooks signing, inboxes, inbound and outbound deliveries."""
