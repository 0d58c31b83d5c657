"""Schemathesis hooks for .ci/schemathesis.

A cursor is opaque and signed: only a string Eliot issued, sent back with the filters of
the request that got it, is a cursor. No schema can describe that, so any other is
refused (400 invalid_cursor), as docs/read-api.md says and the black-box tests check
(garbage, altered, other filters); schemathesis would call that refusal of "schema-valid
data" a failure. So these hooks send a cursor only as issued: the cursors seen in
answers are kept with their request's path and filters, and a request carrying a cursor
keeps it only if it is one of those, with the same path and filters (else the cursor is
left out, and the rest of the request is sent as generated).
"""

import json

import schemathesis

# (path, filters without cursor and limit) for every cursor seen in an answer.
ISSUED = {}


def _filters(case):
    query = dict(case.query or {})
    query.pop("cursor", None)
    query.pop("limit", None)
    return (case.formatted_path, json.dumps(query, sort_keys=True, default=str))


@schemathesis.hook
def before_call(context, case, kwargs):
    # Every phase's requests pass here (the coverage phase's too).
    query = case.query
    if query and "cursor" in query:
        if ISSUED.get(str(query["cursor"])) != _filters(case):
            del query["cursor"]


@schemathesis.hook
def after_call(context, case, response):
    try:
        cursor = response.json().get("next_cursor")
    except Exception:
        return
    if isinstance(cursor, str):
        ISSUED[cursor] = _filters(case)
