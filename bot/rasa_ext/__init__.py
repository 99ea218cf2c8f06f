"""Extensions loaded by the Rasa server (Python 3.10 env); imported via PYTHONPATH, not by the app."""
