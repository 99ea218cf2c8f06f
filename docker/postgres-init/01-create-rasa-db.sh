#!/bin/sh
# Run once by the postgres image on a fresh data volume: creates the database that
# Rasa's SQL tracker store uses (bot/endpoints.docker.yml), named by RASA_TRACKER_DB.
set -e
db="${RASA_TRACKER_DB:-crossdesk_rasa}"
exists=$(psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$db'")
if [ "$exists" != "1" ]; then
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
fi
