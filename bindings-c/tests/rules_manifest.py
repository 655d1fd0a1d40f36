#!/usr/bin/env python3
"""Turns tests/rules/*.json (format in tests/rules/README.md) into a
line-oriented manifest that the C test (tests/rules.c) reads without a JSON
parser, as vectors_manifest.py does for tests/vectors.

Every string is written as `x<hex of its UTF-8>` (so `x` alone is the empty
string); `-` means "must be absent" and `*` "not checked". One case:

    case <file name>
    consumer <device_id> <freshness_secs|-> <handle_features 0|1> <rate_limit|->
    profile <p>            (one line each)
    pair <action> <target> (one line each)
    arg <name>             (one line each)
    topics <peer|-> <response_topics|->
    then its steps, each:
    step <at_ms> <now_ms> <topic> <retained 0|1> <payload>
    props none | props <indicator|-> <content type|-> <n>   then n lines: user <key> <value>
    expect <skipped|-> <execute 0|1> <command_id|-|*> <n>   then n responses
    answer <response json> <n>                               then n responses (only with execute)

and a response (what one publish must hold) is

    rsp <n_topics> <status> <dialect|*> <msg_type_property|*> <request_id|-> <from|-> <n_to|-> <status_text_contains|*> <results|-|*>
    then n_topics lines `topic <t>`, then n_to lines `to <id>`

`results` is compact JSON with sorted keys, the form oc2_message_content_json
writes, so the C side compares strings. Every case ends with `end`.

Usage: rules_manifest.py RULES_DIR OUT_FILE
"""

import json
import sys
from pathlib import Path

CASE_KEYS = {"description", "consumer", "topics", "steps"}
CONSUMER_KEYS = {"device_id", "profiles", "pairs", "args", "freshness_secs", "handle_features", "rate_limit"}
STEP_KEYS = {"at_ms", "now_ms", "topic", "payload_json", "payload_text", "payload_hex", "properties", "retained", "expect"}
EXPECT_KEYS = {"skipped", "execute", "publish", "answer"}
RESPONSE_KEYS = {"topics", "dialect", "msg_type_property", "headers", "status", "status_text_contains", "results"}


def s(value):
    return "x" + value.encode("utf-8").hex()


def opt(value):
    return "-" if value is None else s(value)


def canonical(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def check_keys(d, allowed, where):
    extra = set(d) - allowed
    if extra:
        sys.exit(f"{where}: unknown keys {sorted(extra)}")


def payload_of(step, where):
    given = [k for k in ("payload_json", "payload_text", "payload_hex") if k in step]
    if len(given) != 1:
        sys.exit(f"{where}: expected exactly one payload key, found {given}")
    key = given[0]
    if key == "payload_json":
        return json.dumps(step[key], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if key == "payload_text":
        return step[key].encode("utf-8")
    return bytes.fromhex(step[key])


def props_lines(props, where):
    if props is None:
        return ["props none"]
    check_keys(props, {"payload_format_indicator", "content_type", "user_properties"}, where)
    pfi = props.get("payload_format_indicator")
    users = props.get("user_properties", [])
    lines = [f"props {'-' if pfi is None else pfi} {opt(props.get('content_type'))} {len(users)}"]
    lines += [f"user {s(k)} {s(v)}" for k, v in users]
    return lines


def response_lines(rsp, where):
    check_keys(rsp, RESPONSE_KEYS, where)
    headers = rsp.get("headers", {})
    check_keys(headers, {"request_id", "from", "to"}, f"{where}.headers")
    topics = rsp.get("topics", [])
    to = headers.get("to")
    if "results" not in rsp:
        results = "*"
    elif rsp["results"] is None:
        results = "-"
    else:
        results = s(canonical(rsp["results"]))
    fields = [
        str(len(topics)),
        str(rsp["status"]),
        rsp.get("dialect", "*"),
        s(rsp["msg_type_property"]) if "msg_type_property" in rsp else "*",
        opt(headers.get("request_id")),
        opt(headers.get("from")),
        "-" if to is None else str(len(to)),
        s(rsp["status_text_contains"]) if "status_text_contains" in rsp else "*",
        results,
    ]
    lines = ["rsp " + " ".join(fields)]
    lines += [f"topic {s(t)}" for t in topics]
    lines += [f"to {s(t)}" for t in to or []]
    return lines


def step_lines(step, where):
    check_keys(step, STEP_KEYS, where)
    expect = step["expect"]
    check_keys(expect, EXPECT_KEYS, f"{where}.expect")
    retained = 1 if step.get("retained") is True else 0
    lines = [f"step {step['at_ms']} {step['now_ms']} {s(step['topic'])} {retained} x{payload_of(step, where).hex()}"]
    props = step.get("properties")
    lines += props_lines(props, where)
    execute = expect.get("execute")
    if execute is None:
        command_id = "*"
    elif "command_id" not in execute:
        command_id = "*"
    else:
        command_id = opt(execute["command_id"])
    publish = expect.get("publish") or []
    lines.append(f"expect {opt(expect.get('skipped'))} {0 if execute is None else 1} {command_id} {len(publish)}")
    for i, rsp in enumerate(publish):
        lines += response_lines(rsp, f"{where}.publish[{i}]")
    if "answer" in expect:
        if execute is None:
            sys.exit(f"{where}: an answer without execute")
        answer = expect["answer"]
        check_keys(answer, {"response", "publish"}, f"{where}.answer")
        published = answer.get("publish") or []
        lines.append(f"answer {s(canonical(answer['response']))} {len(published)}")
        for i, rsp in enumerate(published):
            lines += response_lines(rsp, f"{where}.answer.publish[{i}]")
    return lines


def case_lines(case, where):
    check_keys(case, CASE_KEYS, where)
    if not case.get("description"):
        sys.exit(f"{where}: no description")
    c = case["consumer"]
    check_keys(c, CONSUMER_KEYS, f"{where}.consumer")
    freshness = c.get("freshness_secs")
    rate = c.get("rate_limit")
    lines = [
        f"case {where}",
        f"consumer {s(c['device_id'])} {'-' if freshness is None else freshness} "
        f"{1 if c.get('handle_features') else 0} {'-' if rate is None else repr(float(rate))}",
    ]
    lines += [f"profile {s(p)}" for p in c.get("profiles", [])]
    lines += [f"pair {s(a)} {s(t)}" for a, t in c.get("pairs", [])]
    lines += [f"arg {s(a)}" for a in c.get("args", [])]
    topics = case.get("topics") or {}
    check_keys(topics, {"peer", "response_topics"}, f"{where}.topics")
    lines.append(f"topics {topics.get('peer', '-')} {topics.get('response_topics', '-')}")
    for i, step in enumerate(case["steps"]):
        lines += step_lines(step, f"{where} step {i}")
    lines.append("end")
    return lines


def main():
    rules, out = Path(sys.argv[1]), Path(sys.argv[2])
    files = sorted(rules.glob("*.json"))
    if not files:
        sys.exit(f"no rule vectors in {rules}")
    lines = [f"count {len(files)}"]
    for f in files:
        lines += case_lines(json.loads(f.read_text(encoding="utf-8")), f.name)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
