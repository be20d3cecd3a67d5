"""Where lifecycle events go: an EventBridge bus and signed webhooks (see service/events.py)."""
