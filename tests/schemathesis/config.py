"""Writes the schemathesis.toml of one pass of tests/schemathesis/run.sh.

Usage: config.py BASE_URL TOKEN OUT.toml [EXCLUDED_USER_ID]

The generator draws these values instead of random ones part of the time,
so that cases reach what exists: the tickets the caller can see (and their
extension requests), departments, Open311 services, users, outbox rows.
EXCLUDED_USER_ID is left out of the user ids (the pass's own admin).
"""

import json
import os
import sys
import urllib.error
import urllib.request

base, token, out = sys.argv[1], sys.argv[2], sys.argv[3]
excluded_user = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None


def get(path, auth=True):
    req = urllib.request.Request(base + path)
    if auth:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError:
        return None  # not for this role


tickets = (get("/api/v1/tickets?per_page=500") or {}).get("items", [])
ticket_ids = [t["id"] for t in tickets]
ticket_nos = [t["ticket_no"] for t in tickets]
extension_ids = []
for t in tickets:
    detail = get(f"/api/v1/tickets/{t['id']}") or {}
    extension_ids += [e["id"] for e in detail.get("extensions", [])]
departments = [d["code"] for d in (get("/api/v1/departments") or {}).get("items", [])]
services = [s["service_code"] for s in get("/open311/v2/services.json", auth=False) or []]
users = [u["id"] for u in (get("/api/v1/users") or {}).get("items", []) if u["id"] != excluded_user]
outbox = [r["id"] for r in (get("/api/v1/outbox?per_page=500") or {}).get("items", [])]


here = os.path.dirname(os.path.abspath(__file__))
dictionaries = {
    "ids": ticket_ids + users + outbox,
    "tickets": ticket_ids,
    "ticket_nos": ticket_nos,
    "extensions": extension_ids,
    "departments": departments,
    "services": services,
    "api_key": [os.environ.get("HOTLINE__OPEN311__API_KEY", "")],
}
# parameter -> (dictionary, share of the cases that draw from it)
bindings = {
    "path.id": ("ids", 0.7),
    "path.ext_id": ("extensions", 0.7),
    "path.ticket_no": ("ticket_nos", 0.5),
    "path.service_request_id": ("ticket_nos", 0.5),
    "path.service_code": ("services", 0.6),
    "body.into": ("tickets", 0.5),
    "body.department": ("departments", 0.6),
    "body.district": ("departments", 0.3),
    "query.department": ("departments", 0.5),
    "body.service_code": ("services", 0.6),
    "body.api_key": ("api_key", 0.7),
}
with open(out, "w", encoding="utf-8") as f:
    f.write(f'hooks = "{os.path.join(here, "hooks.py")}"\n\n')
    used = {name: list(dict.fromkeys(v)) for name, v in dictionaries.items() if any(v)}
    for name, values in used.items():
        f.write(f"[dictionaries.{name}]\nvalues = {json.dumps(values, ensure_ascii=False)}\n")
    f.write("\n[parameters]\n")
    for parameter, (name, share) in bindings.items():
        if name in used:
            f.write(f'"{parameter}" = {{ dictionary = "{name}", probability = {share} }}\n')
print(
    f"schemathesis: {len(ticket_ids)} tickets, {len(extension_ids)} extension requests, "
    f"{len(departments)} departments, {len(services)} services, {len(users)} users, "
    f"{len(outbox)} outbox rows for this pass"
)
