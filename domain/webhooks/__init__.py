"""Webhooks: endpoints, the events that job transitions write (an outbox), and deliveries."""
