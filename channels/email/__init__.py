"""Email channel edge: email <-> normalized messages (mime), SMTP out (smtp), IMAP in (imap), Postmark webhook (api)."""
