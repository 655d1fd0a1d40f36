#!/usr/bin/env python3
"""Splits the sequential round trip recorded by `profile-seq.mjs ... trace`.

    node profile-seq.mjs oc2 trace > run.json && python3 trace-split.py run.json

Reads the JSON line profile-seq.mjs printed (pids, thread names, file
descriptors, perf.data) and `perf script` of perf.data, and follows each
exchange along its critical path: the hops of the command and of the
response between the threads that carry them. Per hop it prints the mean
time from the previous hop, and, when the thread had to be woken for it,
how long it waited from its wake-up to running (scheduler latency) and from
running to the hop (kernel return and user-space work before it). It also
prints each thread's CPU time, context switches and hand-off syscalls per
exchange.

Hop kinds: `send` and `recv` are socket writes and reads of more than 64
bytes (a PUBLISH, not a PUBACK); `efd-w` / `efd-r` are eventfd writes and
reads (libuv's async wake-up, tokio's waker), or a pipe's
(the binding's settler with OC2_NODE_WAKE=pipe).
"""

import json
import re
import subprocess
import sys
from collections import defaultdict

NR = {0: 'read', 1: 'write', 19: 'readv', 20: 'writev', 44: 'sendto', 45: 'recvfrom', 46: 'sendmsg', 47: 'recvmsg',
      202: 'futex', 232: 'epoll_wait', 281: 'epoll_pwait', 441: 'epoll_pwait2', 7: 'poll', 271: 'ppoll'}
WRITES = {'write', 'writev', 'sendto', 'sendmsg'}
READS = {'read', 'readv', 'recvfrom', 'recvmsg'}
EPOLL = {'epoll_wait', 'epoll_pwait', 'epoll_pwait2'}
BIG = 64

PATHS = {
    # role, kind: the critical path of one sequential exchange, from the producer's PUBLISH to the next.
    'oc2': [('P.js', 'send'), ('B', 'recv'), ('B', 'send'), ('C.io', 'recv'), ('C.io', 'efd-w'), ('C.js', 'efd-r'),
            ('C.js', 'send'), ('B', 'recv'), ('B', 'send'), ('P.io', 'recv'), ('P.io', 'efd-w'), ('P.js', 'efd-r'),
            ('P.js', 'send')],
    'mqttjs': [('P.js', 'send'), ('B', 'recv'), ('B', 'send'), ('C.js', 'recv'), ('C.js', 'send'), ('B', 'recv'),
               ('B', 'send'), ('P.js', 'recv'), ('P.js', 'send')],
}

LINE = re.compile(r'^\s*(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')


def main():
    run = json.loads(open(sys.argv[1]).read().splitlines()[0])
    pair = run['pair']
    pids = {k: int(v) for k, v in run['pids'].items()}
    role = {}  # tid -> role
    for proc, threads in run['names'].items():
        short = {'producer': 'P', 'consumer': 'C', 'broker': 'B'}[proc]
        for tid, name in threads.items():
            tid = int(tid)
            if proc == 'broker':
                role[tid] = 'B'
            elif tid == pids[proc]:
                role[tid] = f'{short}.js'
            elif name == 'oc2mqtt-io':
                role[tid] = f'{short}.io'
            else:
                role[tid] = f'{short}.{name}'
    proc_of = {}
    for proc, threads in run['names'].items():
        for tid in threads:
            proc_of[int(tid)] = proc
    # Wake-up channels: eventfds (libuv's async handles, tokio's waker) and pipes (OC2_NODE_WAKE=pipe).
    eventfds = {proc: {int(fd) for fd, t in fds.items() if 'eventfd' in t or t.startswith('pipe:')} for proc, fds in run['fds'].items()}
    sockets = {proc: {int(fd) for fd, t in fds.items() if t.startswith('socket:')} for proc, fds in run['fds'].items()}

    out = subprocess.run(['perf', 'script', '-i', run['perf'], '-F', 'tid,cpu,time,event,trace'],
                         capture_output=True, text=True, check=True).stdout
    pending = {}  # tid -> (nr, fd, t_enter)
    events = defaultdict(list)  # role -> [(t, kind)]
    calls = defaultdict(lambda: defaultdict(int))  # role -> syscall -> count
    oncpu = {}  # tid -> t switched in
    cpu = defaultdict(float)  # role -> seconds
    switches = defaultdict(int)  # role -> voluntary switches out
    wakeups = defaultdict(list)  # role -> [t]
    switch_in = defaultdict(list)  # role -> [t]
    wake_cpu = {}  # (role, t) -> (the waker's CPU, the CPU the wakee is put on)
    t_first = t_last = None
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        tid, t, ev, rest = int(m.group(1)), float(m.group(3)), m.group(4), m.group(5)
        t_first = t if t_first is None else t_first
        t_last = t
        if ev == 'sched:sched_switch':
            prev = int(re.search(r'prev_pid=(\d+)', rest).group(1))
            nxt = int(re.search(r'next_pid=(\d+)', rest).group(1))
            state = re.search(r'prev_state=(\S+)', rest).group(1)
            if prev in role:
                if prev in oncpu:
                    cpu[role[prev]] += t - oncpu.pop(prev)
                if state.startswith('S') or state.startswith('D'):
                    switches[role[prev]] += 1
            if nxt in role:
                oncpu[nxt] = t
                switch_in[role[nxt]].append(t)
        elif ev == 'sched:sched_wakeup':
            pid = int(re.search(r'pid=(\d+)', rest).group(1))
            if pid in role:
                wakeups[role[pid]].append(t)
                target = int(re.search(r'target_cpu=(\d+)', rest).group(1))
                wake_cpu[(role[pid], t)] = (int(m.group(2)), target)
        elif ev == 'raw_syscalls:sys_enter':
            mm = re.match(r'NR (\d+) \(([0-9a-f]+)', rest)
            nr, fd = int(mm.group(1)), int(mm.group(2), 16)
            pending[tid] = (nr, fd, t)
        elif ev == 'raw_syscalls:sys_exit':
            mm = re.match(r'NR (\d+) = (-?\d+)', rest)
            nr, ret = int(mm.group(1)), int(mm.group(2))
            if tid not in pending or pending[tid][0] != nr or tid not in role:
                pending.pop(tid, None)
                continue
            _, fd, t0 = pending.pop(tid)
            name = NR.get(nr, f'nr{nr}')
            r = role[tid]
            proc = proc_of[tid]
            if name in WRITES and fd in eventfds[proc]:
                calls[r]['eventfd write'] += 1
                events[r].append((t0, 'efd-w'))
            elif name in READS and fd in eventfds[proc]:
                calls[r]['eventfd read'] += 1
                if ret > 0:
                    events[r].append((t, 'efd-r'))
            elif name in WRITES or name in READS:
                sock = fd in sockets[proc]
                calls[r][f'{name}{"" if sock else " (other fd)"}'] += 1
                if sock and ret > BIG:
                    events[r].append((t0 if name in WRITES else t, 'send' if name in WRITES else 'recv'))
            else:
                calls[r][name] += 1
                if name in EPOLL and ret == 0:
                    calls[r][f'{name} (none ready)'] += 1

    path = PATHS[pair]
    import bisect
    times = {r: [e[0] for e in evs] for r, evs in events.items()}
    for r in list(wakeups) + list(switch_in):
        wakeups[r].sort()
        switch_in[r].sort()

    def first(r, kind, after):
        evs = events.get(r, [])
        i = bisect.bisect_right(times.get(r, []), after)
        while i < len(evs):
            if evs[i][1] == kind:
                return evs[i][0]
            i += 1
        return None

    # Exchanges start at each PUBLISH of the producer's JS thread.
    starts = [t for t, k in events['P.js'] if k == 'send']
    hops = defaultdict(list)  # index -> [(gap, woken, sched_delay, after_run)]
    totals = []
    for s in starts:
        t = s
        rows = []
        ok = True
        for i, (r, kind) in enumerate(path[1:], 1):
            nxt = first(r, kind, t)
            if nxt is None or nxt - s > 0.05:
                ok = False
                break
            # Was the thread woken between the previous hop and this one?
            w = wakeups.get(r, [])
            j = bisect.bisect_right(w, nxt) - 1
            woken = j >= 0 and w[j] > t
            delay = after = same = None
            if woken:
                wc, tc = wake_cpu.get((r, w[j]), (None, None))
                same = wc == tc
                si = switch_in.get(r, [])
                k = bisect.bisect_left(si, w[j])
                if k < len(si) and si[k] <= nxt:
                    delay, after = si[k] - w[j], nxt - si[k]
            rows.append((nxt - t, woken, delay, after, same))
            t = nxt
        if ok:
            totals.append(t - s)
            for i, row in enumerate(rows, 1):
                hops[i].append(row)
    n = len(totals)
    window = t_last - t_first
    print(f'{pair}: {n} exchanges followed of {len(starts)} started in {window:.3f} s '
          f'({len(starts) / window:.0f}/s under tracing; untraced {run["rate"]:.0f}/s), load {run["load"]:.1f}')
    print(f'round trip (PUBLISH to next PUBLISH), mean {1e6 * sum(totals) / max(n, 1):.1f} µs, '
          f'median {1e6 * sorted(totals)[n // 2]:.1f} µs')
    print('| hop | thread: event | mean µs from previous hop | median µs | woken for it | on the waker\'s CPU | wake-up → running µs, median | running → event µs, median |')
    print('|---|---|---|---|---|---|---|---|')
    for i, (r, kind) in enumerate(path[1:], 1):
        rows = hops[i]
        gap = 1e6 * sum(x[0] for x in rows) / n
        wk = sum(1 for x in rows if x[1]) / n
        ds = [x[2] for x in rows if x[2] is not None]
        afs = [x[3] for x in rows if x[3] is not None]
        med = lambda xs: sorted(xs)[len(xs) // 2]
        d = f'{1e6 * med(ds):.1f}' if ds else '–'
        a = f'{1e6 * med(afs):.1f}' if afs else '–'
        gm = 1e6 * med([x[0] for x in rows])
        sm = [x[4] for x in rows if x[1]]
        sc = f'{100 * sum(sm) / len(sm):.0f} %' if sm else '–'
        print(f'| {i} | {r}: {kind} (after {path[i - 1][0]}: {path[i - 1][1]}) | {gap:.1f} | {gm:.1f} | {100 * wk:.0f} % | {sc} | {d} | {a} |')
    per = len(starts)
    print(f'\nper exchange ({per} PUBLISHes of the producer JS thread in the window):')
    print('| thread | CPU µs | sleeps (voluntary switches) | wake-ups | syscalls |')
    print('|---|---|---|---|---|')
    for r in sorted(set(cpu) | set(calls)):
        if cpu[r] * 1e6 / per < 1 and sum(calls[r].values()) / per < 0.05:
            continue
        sc = ', '.join(f'{k} {v / per:.2f}' for k, v in sorted(calls[r].items()) if v / per >= 0.01)
        print(f'| {r} | {1e6 * cpu[r] / per:.1f} | {switches[r] / per:.2f} | {len(wakeups[r]) / per:.2f} | {sc} |')


if __name__ == '__main__':
    main()
