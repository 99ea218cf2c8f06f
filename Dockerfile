# Image for the crossdesk app (uvicorn channels.app:app) and the rasa-sdk action server
# (python -m bot.action_server); docker-compose.yml picks the command. Runtime packages only
# (requirements/app.lock); the test-only ones (requirements/test.lock) never enter the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# dependencies first, so code changes do not reinstall them
COPY requirements/app.lock requirements/app.lock
RUN pip install -r requirements/app.lock

# the rest of the repo (.dockerignore keeps .git, models, caches out)
COPY . .

RUN useradd --create-home --uid 10001 crossdesk
USER crossdesk

ENV PYTHONPATH=/app
EXPOSE 8000 5055
CMD ["uvicorn", "channels.app:app", "--host", "0.0.0.0", "--port", "8000"]
