"""Sends identify and track calls with the official Segment Python library (segment-analytics-python).

Environment: KREISLAUF_HOST (http://127.0.0.1:PORT), KREISLAUF_WRITE_KEY, RUN_ID.
Exits non-zero if the library reports any delivery error.
"""
import os
import sys

import segment.analytics as analytics

errors = []
analytics.write_key = os.environ["KREISLAUF_WRITE_KEY"]
analytics.host = os.environ["KREISLAUF_HOST"]
analytics.on_error = lambda error, items: errors.append(repr(error))
analytics.max_retries = 3

run = os.environ["RUN_ID"]
user = f"py-user-{run}"
analytics.identify(user, {"email": f"py.{run}@example.ch", "first_name": "Jürg", "loyalty_card": f"PY{run}"})
for i in range(3):
    analytics.track(user, "Order Completed", {"order_id": f"py-{run}-{i}", "revenue": 11.95, "currency": "CHF"})
analytics.page(user, "Weinclub", "Angebote", {"path": "/angebote"})
analytics.flush()
analytics.shutdown()
if errors:
    print("delivery errors:", errors, file=sys.stderr)
    sys.exit(1)
print("python: sent 5 messages")
