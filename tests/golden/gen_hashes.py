#!/usr/bin/env python3
"""Reference encoder for repliqate's message golden tests (stdlib only).

Computes, with CPython's own json module, what the old Python repliqate published for each row:
the canonical text `json.dumps(data, sort_keys=True)`, its SHA-256, and the full message value
`json.dumps({"timestamp": ..., "name": ..., "table": ..., "data": data, "hash": ...})`.

Usage: gen_hashes.py [ROWS_JSONL [OUT_JSONL]]
(defaults: rows.jsonl and hashes.jsonl next to this script)

Input lines: {"columns": [str, ...], "values": [tagged, ...], "timestamp": "<float>"?}
A tagged value names the Rust `Value` variant it stands for, so both sides read the same thing:
  ["null"]  ["bool", true]  ["int", "<decimal>"]  ["uint", "<decimal>"]
  ["float", "<decimal or nan/inf/-inf>"]  ["str", "..."]  ["json", <tagged json>]
Tagged json: ["null"] ["bool", b] ["int", "<decimal>"] ["float", "<decimal>"] ["str", s]
  ["arr", [tagged json, ...]]  ["obj", [[key, tagged json], ...]]
Numbers travel as strings so that neither side's JSON number parsing can round them.

Output lines: {"canonical": str, "sha256": str, "message": str}

repliqate's one deliberate difference from the old tool: non-finite floats are published and
hashed as null (Python would write NaN/Infinity, which is not JSON); see src/message.rs.
"""

import hashlib
import json
import math
import os
import sys

NAME = "bench-\u00fc/\"q\""
TABLE = "events"
TIMESTAMP = 1795465354.2384515


def number(text, kind):
    if kind == "float":
        f = float(text)
        return None if not math.isfinite(f) else f
    return int(text)


def decode_json(tagged):
    tag = tagged[0]
    if tag == "null":
        return None
    if tag in ("bool", "str"):
        return tagged[1]
    if tag in ("int", "float"):
        return number(tagged[1], tag)
    if tag == "arr":
        return [decode_json(item) for item in tagged[1]]
    if tag == "obj":
        obj = {}
        for key, item in tagged[1]:
            obj[key] = decode_json(item)
        return obj
    raise ValueError("unknown json tag %r" % (tag,))


def decode_value(tagged):
    tag = tagged[0]
    if tag == "null":
        return None
    if tag in ("bool", "str"):
        return tagged[1]
    if tag in ("int", "uint", "float"):
        return number(tagged[1], tag)
    if tag == "json":
        return decode_json(tagged[1])
    raise ValueError("unknown value tag %r" % (tag,))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rows_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "rows.jsonl")
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "hashes.jsonl")
    with open(rows_path, encoding="utf-8") as rows, open(out_path, "w", encoding="utf-8") as out:
        for line in rows:
            if not line.strip():
                continue
            row = json.loads(line)
            # The old tool built `data` as a dict: a repeated column keeps its first position
            # and takes its last value.
            data = dict(zip(row["columns"], (decode_value(v) for v in row["values"])))
            timestamp = float(row.get("timestamp", TIMESTAMP))
            canonical = json.dumps(data, sort_keys=True)
            digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
            message = json.dumps(
                {"timestamp": timestamp, "name": NAME, "table": TABLE, "data": data, "hash": digest}
            )
            out.write(json.dumps({"canonical": canonical, "sha256": digest, "message": message}))
            out.write("\n")


if __name__ == "__main__":
    main()
