#!/usr/bin/env python3
"""Turns tests/vectors/*/*.json into a line-oriented manifest that the C
test (tests/vectors.c) reads without a JSON parser.

Every string is written as `x<hex of its UTF-8>` (so `x` alone is the empty
string); `-` means "must be absent" and `*` "not checked". One case:

    case <group/name>
    payload <hex bytes>
    props none | props <indicator|-> <content type> <n>   then n lines: user <key> <value>
    ok <encoding> <dialect> <msg_type> <bare_ok 0|1> <canonical json> <otupy json>
    err <kind> <path> <reason_contains> <request_id> <from> <dialect> <encoding> <msg_type>
    end

The canonical JSON is compact with sorted keys, the form oc2_message_json
writes, so the C side compares strings. The otupy JSON is what the message
reads back as after a round trip through the otupy dialect, whose top level
holds the headers: the message's own top-level keys (`signature`) come back
as headers. bare_ok says whether the bare dialect can carry the message: it
carries the four defined headers beside the body, and nothing else.

Usage: vectors_manifest.py VECTORS_DIR OUT_FILE
"""

import json
import sys
from pathlib import Path

TOP_KEYS = {"description", "payload_json", "payload_text", "payload_hex", "payload_repeat", "properties", "expect"}
PAYLOAD_KEYS = ("payload_json", "payload_text", "payload_hex", "payload_repeat")
SALVAGE_KEYS = ("request_id", "from", "dialect", "encoding", "msg_type")
BARE_HEADERS = {"request_id", "created", "from", "to"}


def s(value):
    return "x" + value.encode("utf-8").hex()


def payload_of(case, where):
    given = [k for k in PAYLOAD_KEYS if k in case]
    if len(given) != 1:
        sys.exit(f"{where}: expected exactly one of {PAYLOAD_KEYS}, found {given}")
    key = given[0]
    v = case[key]
    if key == "payload_json":
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if key == "payload_text":
        return v.encode("utf-8")
    if key == "payload_hex":
        return bytes.fromhex(v)
    extra = set(v) - {"prefix", "fill", "count", "suffix"}
    if extra:
        sys.exit(f"{where}: unknown payload_repeat keys {extra}")
    return (v["prefix"] + v["fill"] * v["count"] + v["suffix"]).encode("utf-8")


def props_lines(props, where):
    if props is None:
        return ["props none"]
    extra = set(props) - {"payload_format_indicator", "content_type", "user_properties"}
    if extra:
        sys.exit(f"{where}: unknown properties keys {extra}")
    pfi = props.get("payload_format_indicator")
    ct = props.get("content_type")
    users = props.get("user_properties", [])
    lines = [f"props {'-' if pfi is None else pfi} {'-' if ct is None else s(ct)} {len(users)}"]
    lines += [f"user {s(k)} {s(v)}" for k, v in users]
    return lines


def expect_line(expect, where):
    if "error" in expect:
        extra = set(expect) - {"error", "path", "reason_contains", "salvage"}
        if extra:
            sys.exit(f"{where}: unknown expect keys {extra}")
        salvage = expect.get("salvage", {})
        if set(salvage) - set(SALVAGE_KEYS):
            sys.exit(f"{where}: unknown salvage keys {set(salvage) - set(SALVAGE_KEYS)}")
        fields = [
            expect["error"],
            s(expect["path"]) if "path" in expect else "*",
            s(expect["reason_contains"]) if "reason_contains" in expect else "*",
        ]
        for key in SALVAGE_KEYS:
            if key not in salvage:
                fields.append("*")
            elif salvage[key] is None:
                fields.append("-")
            else:
                fields.append(s(salvage[key]))
        return "err " + " ".join(fields)
    extra = set(expect) - {"encoding", "dialect", "msg_type", "message"}
    if extra:
        sys.exit(f"{where}: unknown expect keys {extra}")
    message = expect["message"]
    headers = message.get("headers", {})
    top_level = {k: v for k, v in message.items() if k not in ("headers", "body")}
    bare_ok = int(set(headers) <= BARE_HEADERS and not top_level and expect["msg_type"] != "notification")
    via_otupy = {"headers": {**headers, **top_level}, "body": message["body"]} if top_level else message
    canonical, otupy = (
        json.dumps(m, separators=(",", ":"), ensure_ascii=False, sort_keys=True) for m in (message, via_otupy)
    )
    return f"ok {expect['encoding']} {expect['dialect']} {expect['msg_type']} {bare_ok} {s(canonical)} {s(otupy)}"


def main():
    vectors, out = Path(sys.argv[1]), Path(sys.argv[2])
    files = sorted(vectors.glob("*/*.json"))
    if not files:
        sys.exit(f"no vectors under {vectors}")
    lines = [f"count {len(files)}"]
    for f in files:
        where = f"{f.parent.name}/{f.name}"
        case = json.loads(f.read_text(encoding="utf-8"))
        unknown = set(case) - TOP_KEYS
        if unknown or not case.get("description"):
            sys.exit(f"{where}: unknown keys {unknown} or no description")
        lines.append(f"case {where}")
        lines.append(f"payload x{payload_of(case, where).hex()}")
        lines += props_lines(case.get("properties"), where)
        lines.append(expect_line(case["expect"], where))
        lines.append("end")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
