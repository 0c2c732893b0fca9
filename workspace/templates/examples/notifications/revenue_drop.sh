#!/bin/sh
# Alerts when revenue of the latest day with orders is 20 % or more below the average of the
# 7 days before it (demo instance: table orders with order_date, total and status).
# depends: orders
#
# Runs after every sync of orders. The whole check is one DuckDB query that prints the JSON
# object the server expects.
exec "$ANALYST_BIN" sql --value "
WITH daily AS (
  SELECT order_date AS day, sum(total)::DOUBLE AS revenue
  FROM orders WHERE status <> 'cancelled'
  GROUP BY 1
), latest AS (SELECT max(day) AS day FROM daily),
figures AS (
  SELECT (SELECT revenue FROM daily WHERE day = latest.day) AS today,
         (SELECT avg(revenue) FROM daily WHERE day >= latest.day - 7 AND day < latest.day) AS avg7,
         latest.day AS day
  FROM latest
)
SELECT CASE
  WHEN avg7 IS NULL OR avg7 = 0 THEN '{\"notify\": false}'
  ELSE to_json({
    notify: (1 - today / avg7) * 100 >= 20,
    title: 'Revenue dropped ' || round((1 - today / avg7) * 100, 1) || '%',
    message: 'Day: ' || day || chr(10) || 'Revenue: ' || round(today, 2) || chr(10) || '7-day average: ' || round(avg7, 2),
    cooldown: '6h',
    data: {today_revenue: round(today, 2), avg_7d_revenue: round(avg7, 2), drop_percent: round((1 - today / avg7) * 100, 1)}
  })::VARCHAR
END
FROM figures"
