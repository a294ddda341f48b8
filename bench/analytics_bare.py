"""The baseline for bench/analytics.py: a bare Flask endpoint that takes an analytics batch."""

from flask import Flask, request

app = Flask(__name__)


@app.post("/api/v1/analytics/flags/")
def analytics():  # same path and method as the SDK's analytics POST
    request.get_json()
    return {}
