"""A Python consumer killed in the middle of its work (as cli/tests/crash.rs):
``Consumer.serve`` with a stable client id and a journal, handlers taking
0.5 s, SIGKILLed while 600 commands stream in at about 100 a second, and
started again. Every command runs and every exchange completes; none runs
twice but those the journal held as taken and not answered at the kill
(``python -m oc2mqtt journal --json``): a handler that ran and was killed
before its answer was journaled runs again (at least once, as documented),
one answered before the kill never.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import oc2mqtt

CONSUMER = Path(__file__).with_name("crash_consumer.py")
COMMANDS, KILL_AT, RESTART_AT = 600, 250, 350


def taken_not_answered(journal: Path) -> set[str]:
    """The request ids the journal holds as taken and not answered: run again on restart."""
    out = subprocess.run(
        [sys.executable, "-m", "oc2mqtt", "journal", "--json", str(journal)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    return {line["request_id"] for line in lines if line["state"] == "run_again"}


class Serving:
    """One run of crash_consumer.py; the targets it handled go to `runs`."""

    def __init__(self, url: str, directory: Path, runs: Counter[str], lock: threading.Lock) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CONSUMER), url, str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None and self.process.stdout is not None
        for line in self.process.stderr:
            if "ready" in line:
                break
        else:
            raise AssertionError(f"the consumer ended before it was ready: {self.process.wait()}")
        stdout, stderr = self.process.stdout, self.process.stderr

        def count() -> None:
            for target in stdout:
                with lock:
                    runs[target.strip()] += 1

        self.threads = [
            threading.Thread(target=count, daemon=True),
            threading.Thread(target=lambda: [None for _ in stderr], daemon=True),
        ]
        for t in self.threads:
            t.start()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for t in self.threads:
            t.join(10)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.mark.timeout(180)
def test_a_consumer_killed_mid_stream_and_started_again_loses_nothing_and_runs_nothing_twice(
    broker, tmp_path: Path
) -> None:
    runs: Counter[str] = Counter()
    lock = threading.Lock()
    serving = Serving(broker.url, tmp_path, runs, lock)
    exchanges = []
    killed_after = None
    taken: set[str] = set()
    started = time.monotonic()
    with oc2mqtt.Producer(broker.url, "p1") as producer:
        try:
            for i in range(COMMANDS):
                target = f"10.0.{i // 250}.{i % 250}/32"
                command = {"action": "deny", "target": {"ipv4_net": target}}
                exchanges.append((target, producer.send(command, to="fw-1", timeout=30)))
                time.sleep(0.01)
                if i == KILL_AT:
                    serving.kill()
                    with lock:
                        killed_after = len(runs)
                    taken = taken_not_answered(tmp_path / "journal")
                if i == RESTART_AT:
                    # Started again while commands keep coming (its session kept them).
                    serving = Serving(broker.url, tmp_path, runs, lock)
            incomplete = [target for target, x in exchanges if not x.collect().complete]
        finally:
            serving.kill()
    twice = {t: n for t, n in runs.items() if n > 1}
    rerun_allowed = {t for t, x in exchanges if x.request_id in taken}
    answered_twice = {t: n for t, n in twice.items() if t not in rerun_allowed}
    missing = [t for t, _ in exchanges if t not in runs]
    print(
        f"crash: {COMMANDS} commands, consumer killed after {killed_after} had run; {len(runs)} ran in all, "
        f"{len(twice)} twice, {len(taken)} taken and not answered at the kill, "
        f"{len(incomplete)} exchanges incomplete, {time.monotonic() - started:.1f} s"
    )
    assert taken, "the journal held the commands being handled at the kill"
    assert not answered_twice, f"answered before the kill, run again: {answered_twice}"
    assert not missing, f"{len(missing)} never ran: {missing[:10]}"
    assert len(runs) == COMMANDS
    assert not incomplete, f"{len(incomplete)} exchanges incomplete: {incomplete[:10]}"


def test_journal_and_handler_timeout_are_checked_before_connecting() -> None:
    with pytest.raises(TypeError, match="journal: expected a path"):
        oc2mqtt.Consumer("mqtt://127.0.0.1:1", "fw-1", journal=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="handler_timeout"):
        oc2mqtt.Consumer("mqtt://127.0.0.1:1", "fw-1", handler_timeout=-1)
