"""Web chat channel: full-page chat, embeddable widget and its WebSocket (see channels/web/api.py)."""
