#!/usr/bin/env python3
"""The house rules of the Rust crates, checked from their sources (ARCHITECTURE.md, "Invariants").

1. No import cycles between files (`crate::` and `super::` paths; a module and the modules it
   contains are one unit), in node/src and proto-types/src, nor between the node's folders.
2. Each top-level module of the node imports only the modules its layer allows (LAYERS below):
   the store knows nothing above it; the engine never the network; the event loop never the API.
3. The event loop never touches the disk: no file system call and no read of the store in net/
   (the store is only handed to the evidence server, which runs off the loop).
4. No node source file is longer than MAX_LINES, except those listed in LONG (one concern each).

Usage: .ci/layers.py [--graph]   (from the repository root; --graph prints the module graph)"""
import os
import re
import sys

MAX_LINES = 820
# Files allowed to be longer, each holding one concern.
LONG = {
    "node/src/cli/demo/mod.rs": "the narrated demo: one story, step by step",
}
# What each top-level module of rogatory-node may import (besides std and other crates).
BASE = {"files", "config", "secret", "keydir", "trust", "people"}
LAYERS = {
    "files": set(),
    "secret": {"files"},
    "config": {"files"},
    "keydir": {"files", "secret"},
    "trust": {"files", "keydir"},
    "people": {"files", "secret"},
    "store": {"files"},
    "cases": {"store"},
    "evidence": {"store", "cases"},
    "export": {"store", "cases", "evidence"},
    "stats": {"store"},
    "engine": {"store", "cases", "evidence"},
    "net": {"engine", "evidence", "store"},
    "api": {"engine", "net", "store", "cases", "evidence", "export", "stats"},
    "client": {"api"},
    "console": {"api", "evidence"},
    "daemon": {"api", "console", "net", "engine", "evidence", "store", "cases"},
    "cli": {"api", "client", "daemon", "net", "engine", "store", "cases", "evidence", "export", "stats"},
}
# In net/: calls that would read or write the disk on the event loop.
NET_FORBIDDEN = re.compile(
    r"std::fs::|tokio::fs::|File::(open|create)|\bstore\s*\.\s*(?!clone\b)[a-z_]+\s*\(|\.store\s*\.\s*[a-z_]+\s*\("
)


def modules(root):
    mods = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                parts = os.path.relpath(p, root)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                mods["::".join(parts)] = p
    return mods


def source(path):
    src = open(path, encoding="utf-8", errors="replace").read()
    # Unit tests may import anything.
    src = re.sub(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{.*", "", src, flags=re.S)
    # Comments and doc comments name modules without importing them.
    return re.sub(r"//[^\n]*", "", src)


def edges_of(mods):
    def target(segs):
        for n in range(len(segs), 0, -1):
            m = "::".join(segs[:n])
            if m in mods:
                return m
        return None

    edges = {m: set() for m in mods}
    for m, p in mods.items():
        src = source(p)
        here = m.split("::") if m else []
        is_dir = os.path.basename(p) in ("mod.rs", "lib.rs", "main.rs")
        # `super` of a file module is its parent; of a folder's mod.rs, the folder's parent.
        parent = here[:-1]
        paths = []
        for prefix, rest in re.findall(r"\b(crate|super)::([A-Za-z_][A-Za-z0-9_:]*)", src):
            base = [] if prefix == "crate" else parent
            paths.append(base + [s for s in rest.split("::") if s])
        for prefix, group in re.findall(r"use\s+(crate|super)::\{([^}]*)\}", src):
            base = [] if prefix == "crate" else parent
            for item in re.split(r"[,\s]+", group):
                if item:
                    paths.append(base + item.split("::{")[0].split("::"))
        for segs in paths:
            t = target(segs)
            if t is None or t == m:
                continue
            if m.startswith(t + "::") or t.startswith(m + "::") or t == "":
                continue
            edges[m].add(t)
        _ = is_dir
    return edges


def cycles(edges):
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            c = []
            while True:
                w = stack.pop()
                on.discard(w)
                c.append(w)
                if w == v:
                    break
            if len(c) > 1:
                found.append(sorted(c))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def main():
    problems = []
    graph = "--graph" in sys.argv
    for crate in ("node/src", "proto-types/src"):
        mods = modules(crate)
        edges = edges_of(mods)
        for c in cycles(edges):
            problems.append(f"{crate}: import cycle: {' <-> '.join(c)}")
        if crate == "node/src":
            top = {}
            for m, ts in edges.items():
                a = m.split("::")[0]
                for t in ts:
                    b = t.split("::")[0]
                    if a and b and a != b:
                        top.setdefault(a, set()).add(b)
            for c in cycles({k: top.get(k, set()) for k in set(top) | {b for v in top.values() for b in v}}):
                problems.append(f"node: the folders import each other: {' <-> '.join(c)}")
            for a, bs in sorted(top.items()):
                if graph:
                    print(f"{a} -> {', '.join(sorted(bs))}")
                allowed = LAYERS.get(a)
                if allowed is None:
                    problems.append(f"node: module {a} has no layer in .ci/layers.py")
                    continue
                for b in sorted(bs - allowed - BASE):
                    problems.append(f"node: {a} imports {b}, which its layer does not allow")
        print(f"{crate}: {len(mods)} modules, {sum(len(e) for e in edges.values())} imports")
    for d, _, fs in os.walk("node/src/net"):
        for f in fs:
            p = os.path.join(d, f)
            for n, line in enumerate(source(p).splitlines(), 1):
                if NET_FORBIDDEN.search(line):
                    problems.append(f"{p}:{n}: the event loop touches the disk: {line.strip()}")
    for d, _, fs in os.walk("node/src"):
        for f in fs:
            p = os.path.join(d, f)
            n = sum(1 for _ in open(p, encoding="utf-8"))
            if n > MAX_LINES and p not in LONG:
                problems.append(f"{p}: {n} lines (more than {MAX_LINES}): split it by concern")
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print("ok: no import cycle; every module within its layer; the event loop reads no disk; files within size")
    sys.exit(1 if problems else 0)


main()
