"""The baseline for bench/sdk_api.py: a bare Flask endpoint returning a 20-flag JSON."""

from flask import Flask, jsonify

FLAGS = [
    {
        "id": index,
        "feature": {"id": index, "name": f"feature_{index}", "type": "STANDARD"},
        "feature_state_value": None if index % 3 else f"value-{index}",
        "enabled": index % 2 == 0,
        "environment": 1,
        "identity": None,
        "feature_segment": None,
    }
    for index in range(20)
]

app = Flask(__name__)


@app.post("/api/v1/identities/")
def identities():  # same path and method as the identify request, so wrk sends one request
    return jsonify({"identifier": "bench", "flags": FLAGS, "traits": []})
