"""Checks repliqate's published messages with Python's own json module (the contract).

Usage: check_messages.py FILE NAME TABLE T0 T1
FILE holds one JSON document per line: {"expected": <data>, "message": <published value>}.
For each message: keys in the order timestamp, name, table, data, hash; name and table as given;
timestamp a float within [T0, T1]; data keys in the expected (column) order; data equal to the
expected data in canonical form (json.dumps(..., sort_keys=True), so 1 != 1.0 and -0.0 != 0.0);
hash = sha256 of json.dumps(data, sort_keys=True). Prints "ok N" or the first problems.
"""
import hashlib
import json
import sys


def main():
    path, name, table, t0, t1 = sys.argv[1:6]
    t0, t1 = float(t0), float(t1)
    problems = []
    n = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            n += 1
            doc = json.loads(line)
            expected, m = doc["expected"], doc["message"]

            def bad(what):
                problems.append("line %d: %s" % (lineno, what))

            if list(m.keys()) != ["timestamp", "name", "table", "data", "hash"]:
                bad("message keys %r" % list(m.keys()))
                continue
            if m["name"] != name or m["table"] != table:
                bad("name/table %r/%r" % (m["name"], m["table"]))
            ts = m["timestamp"]
            if not isinstance(ts, float) or not (t0 - 1 <= ts <= t1 + 1):
                bad("timestamp %r not a float within [%r, %r]" % (ts, t0, t1))
            data = m["data"]
            if list(data.keys()) != list(expected.keys()):
                bad("data keys %r, expected %r" % (list(data.keys()), list(expected.keys())))
            got = json.dumps(data, sort_keys=True)
            want = json.dumps(expected, sort_keys=True)
            if got != want:
                bad("data %s\n   expected %s" % (got, want))
            digest = hashlib.sha256(got.encode("utf-8")).hexdigest()
            if digest != m["hash"]:
                bad("hash %s, python computes %s over %s" % (m["hash"], digest, got))
    if problems:
        print("%d problems in %d messages" % (len(problems), n))
        for p in problems[:10]:
            print(p)
    else:
        print("ok %d" % n)


main()
