#!/usr/bin/env python3
"""Where a process's resident memory is, sampled every INTERVAL s (60) until it exits, as CSV (kB):
the executable's pages, shared libraries, the main heap, thread malloc arenas, thread stacks,
the main stack, the rest. Read from /proc/PID/smaps, so it needs no tooling in the process.

    bench/rss-by-kind.py PID OUT.csv [INTERVAL]

glibc gives each thread that allocates its own arena (64 MiB-aligned anonymous mappings) and Rust
gives each thread a 2 MiB stack, which is how those two are told apart from the rest."""

import os
import re
import sys
import time

pid, out = sys.argv[1], sys.argv[2]
interval = float(sys.argv[3]) if len(sys.argv) > 3 else 60
KINDS = ["binary", "libs", "heap", "arenas", "thread_stacks", "stack", "other"]
exe = os.path.realpath(f"/proc/{pid}/exe")


def kind(start, size_kb, name):
    if name == exe:
        return "binary"
    if ".so" in name:
        return "libs"
    if name in ("[heap]", "[stack]"):
        return name.strip("[]")
    if name == "" and start % (64 << 20) == 0:
        return "arenas"
    if name == "" and size_kb == 2048:
        return "thread_stacks"
    return "other"


with open(out, "w") as f:
    f.write("unix,total," + ",".join(KINDS) + "\n")
while True:
    kb = dict.fromkeys(KINDS, 0)
    current = "other"
    try:
        with open(f"/proc/{pid}/smaps") as smaps:
            for line in smaps:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    fields = line.split()
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    current = kind(start, (end - start) // 1024, fields[5] if len(fields) > 5 else "")
                elif line.startswith("Rss:"):
                    kb[current] += int(line.split()[1])
    except OSError:
        break
    with open(out, "a") as f:
        f.write(f"{int(time.time())},{sum(kb.values())}," + ",".join(str(kb[k]) for k in KINDS) + "\n")
    time.sleep(interval)
