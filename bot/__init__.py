"""Running crossdesk: Rasa project files, model training cache, the process stack and the CLI."""
