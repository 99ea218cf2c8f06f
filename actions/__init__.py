"""Rasa custom actions (rasa-sdk). Thin: they call crm services and render results in the shopper's language."""
from actions import conversation, flows, verification  # noqa: F401  (registers the actions)
