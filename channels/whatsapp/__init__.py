"""WhatsApp Cloud API (Meta Graph API) channel edge: Meta's wire format ⇄ the normalized messages."""
