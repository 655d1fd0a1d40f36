#!/usr/bin/env python3
"""Per-exchange counts from `profile-seq.mjs ... stat` output (perf stat --per-thread -x ';').

    node profile-seq.mjs oc2 stat > stat.txt && python3 stat-split.py stat.txt

Sums the threads of each process by role: the JavaScript thread (the
process's main thread), oc2mqtt-io (the binding's runtime thread), the other
Node threads, and the broker.
"""
import json
import sys
from collections import defaultdict

lines = open(sys.argv[1]).read().splitlines()
run = json.loads(lines[0])
role = {}
for proc, threads in run['names'].items():
    short = {'producer': 'P', 'consumer': 'C', 'broker': 'B'}[proc]
    for tid, name in threads.items():
        if proc == 'broker':
            role[tid] = 'B'
        elif tid == str(run['pids'][proc]):
            role[tid] = f'{short}.js'
        elif name == 'oc2mqtt-io':
            role[tid] = f'{short}.io'
        else:
            role[tid] = f'{short}.other'
counts = defaultdict(lambda: defaultdict(float))
events = []
for line in lines[1:]:
    f = line.split(';')
    if len(f) < 4 or '-' not in f[0]:
        continue
    tid = f[0].rsplit('-', 1)[1]
    try:
        v = float(f[1])
    except ValueError:
        continue
    ev = f[3].replace('syscalls:sys_enter_', '')
    if ev not in events:
        events.append(ev)
    counts[role.get(tid, '?')][ev] += v
n = run['exchanges']
print(f"{run['pair']}: {n} exchanges in {run['seconds']:.2f} s, {run['rate']:.0f}/s under perf stat, load {run['load']:.1f}")
shown = [e for e in events if any(counts[r][e] / n >= 0.01 for r in counts)]
print('| thread | ' + ' | '.join('task-clock µs' if e == 'task-clock' else e for e in shown) + ' |')
print('|---|' + '---|' * len(shown))
order = ['P.js', 'P.io', 'P.other', 'C.js', 'C.io', 'C.other', 'B']
for r in sorted(counts, key=lambda r: order.index(r) if r in order else 99):
    cells = []
    for e in shown:
        v = counts[r][e] / n
        cells.append(f'{v * 1000:.1f}' if e == 'task-clock' else f'{v:.2f}')  # task-clock is in ms
    print(f'| {r} | ' + ' | '.join(cells) + ' |')
