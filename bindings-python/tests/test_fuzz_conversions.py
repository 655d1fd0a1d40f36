"""Random Python values through every function that converts them to core types.

The Rust codec has its own fuzzer (core/fuzz); this covers what only the
binding does: turning dicts, lists, tuples, numbers and strings into JSON
values, with wrong types, odd keys, huge integers, NaN, bytes and sets mixed
in. Each call must return or raise one of the binding's documented errors
with a message: never another exception type, never a crash.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable

import pytest

import oc2mqtt

KEYS = [
    "action", "target", "args", "actuator", "headers", "body", "openc2", "request",
    "response", "notification", "status", "status_text", "results", "request_id",
    "created", "from", "to", "content", "command_id", "response_requested",
    "duration", "start_time", "stop_time", "features", "ipv4_net", "slpf", "x:y",
    "", "\ud800", "k" * 40,
]  # fmt: skip

SEEDS = [
    {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}, "args": {"duration": 500}},
    {"status": 200, "results": {"versions": ["1.0"]}},
    {"headers": {"request_id": "r"}, "body": {"openc2": {"request": {"action": "query", "target": {"features": []}}}}},
    {"content": {"response": {"status": 200}}, "request_id": "x", "to": "p"},
]

REQUEST = {"headers": {"request_id": "r", "from": "p"}, "body": {"openc2": {"request": SEEDS[0]}}}


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def atom(self) -> Any:
        return self.r.choice(
            [
                None, True, False, 0, -1, 2**70, -(2**70), 1.5, math.nan, math.inf, "", "deny",
                "query", "x" * self.r.randint(0, 50), "\ud800", b"bytes", bytearray(b"x"), 102,
                200, 999, "none", "complete", [], {}, (1, 2), {1, 2}, object(), "1.2.3.4",
            ]
        )  # fmt: skip

    def value(self, depth: int = 0) -> Any:
        p = self.r.random()
        if depth > 5 or p < 0.4:
            return self.atom()
        if p < 0.7:
            keys = KEYS if self.r.random() < 0.9 else [1, None, (1,)]
            return {self.r.choice(keys): self.value(depth + 1) for _ in range(self.r.randint(0, 4))}
        return [self.value(depth + 1) for _ in range(self.r.randint(0, 4))]

    def mutate(self, o: Any) -> None:
        if isinstance(o, dict) and o:
            k = self.r.choice(list(o))
            if self.r.random() < 0.5 and isinstance(o[k], (dict, list)):
                self.mutate(o[k])
            else:
                o[k] = self.value()
            if self.r.random() < 0.3:
                o[self.r.choice(KEYS)] = self.value()

    def message(self) -> Any:
        import copy

        m = copy.deepcopy(self.r.choice(SEEDS))
        for _ in range(self.r.randint(1, 3)):
            self.mutate(m)
        if "action" in m and self.r.random() < 0.7:
            return {"headers": {"request_id": "r", "from": "p"}, "body": {"openc2": {"request": m}}}
        if "status" in m and self.r.random() < 0.7:
            return {"headers": {"request_id": "r", "from": "c"}, "body": {"openc2": {"response": m}}}
        return m


def calls(g: Gen) -> list[Callable[[Any], Any]]:
    return [
        lambda m: oc2mqtt.encode(m),
        lambda m: oc2mqtt.encode(m, encoding="cbor"),
        lambda m: oc2mqtt.encode(m, dialect=g.r.choice(["spec", "otupy", "bare"])),
        lambda m: oc2mqtt.request(m),
        lambda m: oc2mqtt.response_to(m, 200),
        lambda m: oc2mqtt.response_to(REQUEST, g.value(), status_text=g.value(), results=g.value()),
        lambda m: oc2mqtt.command_topics(m),
        lambda m: oc2mqtt.response_topics(m),
        lambda m: oc2mqtt.Deduplicator().check(m),
        lambda m: oc2mqtt.Correlator().on_response(m),
        lambda m: oc2mqtt.decode(oc2mqtt.encode(m)[0]),
    ]


@pytest.mark.parametrize("seed", range(8))
def test_random_values_give_a_result_or_a_documented_error(seed: int) -> None:
    g = Gen(seed)
    fns = calls(g)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(2500):
        m = g.message()
        try:
            g.r.choice(fns)(m)
            outcomes["ok"] += 1
        except (oc2mqtt.Error, TypeError, ValueError) as e:
            assert str(e), f"{type(e).__name__} without a message for {m!r:.300}"
            outcomes["error"] += 1
    # The generator must reach both sides, or it tests nothing.
    assert outcomes["ok"] >= 10 and outcomes["error"] >= 10, outcomes
