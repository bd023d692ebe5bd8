"""Routers, one per resource: tickets, review, events, health, webhooks."""
