#!/bin/sh
# Alerts when the newest table you can see is more than 24 hours old.
# schedule: every 1h
#
# $ANALYST_DUCKDB holds a view per table you may see and a table analyst_tables
# (name, folder, files, bytes, last_modified); `$ANALYST_BIN sql` queries it read-only.
max_age_hours=24
age=$("$ANALYST_BIN" sql --value "SELECT date_diff('minute', max(last_modified), now()) // 60 FROM analyst_tables") || exit 1
if [ -z "$age" ]; then
  echo '{"notify": true, "title": "No data files found", "message": "None of your tables has been synced yet.", "cooldown": "6h"}'
elif [ "$age" -gt "$max_age_hours" ]; then
  newest=$("$ANALYST_BIN" sql --value "SELECT strftime(max(last_modified), '%Y-%m-%d %H:%M UTC') FROM analyst_tables")
  printf '{"notify": true, "title": "Data is %sh old", "message": "Newest table: %s\\nThreshold: %sh", "cooldown": "6h"}\n' "$age" "$newest" "$max_age_hours"
else
  echo '{"notify": false}'
fi
