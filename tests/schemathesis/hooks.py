"""Schemathesis hooks for tests/schemathesis/run.sh.

问政江西 pushes are signed (HMAC-SHA256 over `timestamp.body` with the shared
secret): most generated pushes are signed here as the platform would sign
them, so they reach the handler's parsing and registration; the rest keep
the generated headers and test the refusal (401).
"""

import hashlib
import hmac
import json
import os
import random
import time

import schemathesis

SECRET = os.environ.get("HOTLINE__CHANNELS__WENZHENG__SECRET", "")
WENZHENG = "/api/v1/channels/wenzheng/appeals"
SIGNED_SHARE = 0.8


@schemathesis.hook
def before_call(context, case, kwargs):
    if not SECRET or case.operation.path != WENZHENG or random.random() > SIGNED_SHARE:
        return
    body = case.body
    if isinstance(body, bytes):
        raw = body
    else:
        try:
            raw = json.dumps(body, ensure_ascii=False).encode()
        except (TypeError, ValueError):
            return
    # Sent as these exact bytes, so the signature covers what arrives.
    case.body = raw
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
    case.headers = dict(case.headers or {})
    case.headers["X-Wenzheng-Timestamp"] = stamp
    case.headers["X-Wenzheng-Signature"] = "sha256=" + mac.hexdigest()
