"""crossdesk CRM: the shop's data and every business rule the bot and agents rely on."""
