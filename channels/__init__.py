"""Channels: each converts a provider wire format to/from one normalized message; the rest is shared."""
