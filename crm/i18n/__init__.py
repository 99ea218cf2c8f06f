"""Everything about the shopper's language, shared by the channels, the actions and the tools.

- :mod:`crm.i18n.language`: which language a message is in, and per-conversation memory (no database).
- :mod:`crm.i18n.conversation_language`: the conversation's language, decided once per inbound message.
- :mod:`crm.i18n.translation`: offline machine translation (argostranslate) for languages crossdesk does
  not speak natively, with :mod:`crm.i18n.protect` keeping order numbers, brands and placeholders intact.
- :mod:`crm.i18n.catalog`: the reply catalogs (``crm/i18n/locales/<lang>.yml``) and Babel formatting.

Nothing is imported here, so importing one module stays cheap: argostranslate (and torch) load lazily
on first translation, and the Rasa action server (Python 3.10) imports only what the actions use.
"""
