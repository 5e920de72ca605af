#!/usr/bin/env python3
"""Layering checks for src/: no import cycles between top-level modules and
no source file over 600 lines.

A module's imports are the `crate::<module>` paths written in its files
(including `use crate::{a, b}` groups). Uses inside a `#[cfg(test)]` module
count too: a test that needs a higher layer belongs to that layer.

Usage: python3 .ci/check-layering.py [--graph]
"""

import os
import re
import sys

MAX_LINES = 600
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
ENTRY = {"lib", "main"}


def modules():
    mods = {}
    for name in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, name)
        if name.endswith(".rs"):
            mod = name[:-3]
            if mod not in ENTRY:
                mods.setdefault(mod, []).append(path)
        elif os.path.isdir(path):
            for d, _, files in os.walk(path):
                for f in files:
                    if f.endswith(".rs"):
                        mods.setdefault(name, []).append(os.path.join(d, f))
    return mods


SINGLE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def imports(files, known):
    out = {}
    for path in files:
        with open(path, encoding="utf-8") as fh:
            text = strip_comments(fh.read())
        names = set(SINGLE.findall(text))
        for group in GROUP.findall(text):
            for item in group.split(","):
                head = item.strip().split("::")[0].split(" ")[0]
                if head:
                    names.add(head)
        for n in names:
            if n in known:
                out.setdefault(n, set()).add(os.path.relpath(path, os.path.join(ROOT, "..")))
    return out


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    mods = modules()
    known = set(mods)
    graph, where = {}, {}
    for m, files in mods.items():
        deps = imports(files, known)
        deps.pop(m, None)
        graph[m] = set(deps)
        for d, paths in deps.items():
            where[(m, d)] = sorted(paths)

    failed = False
    if "--graph" in sys.argv:
        for m in sorted(graph):
            print(f"{m:16} -> {' '.join(sorted(graph[m])) or '-'}")
    for comp in cycles(graph):
        failed = True
        print(f"import cycle among: {', '.join(comp)}", file=sys.stderr)
        members = set(comp)
        for a in comp:
            for b in sorted(graph[a] & members):
                print(f"  {a} -> {b}: {', '.join(where[(a, b)])}", file=sys.stderr)

    for files in mods.values():
        for path in files:
            with open(path, encoding="utf-8") as fh:
                n = sum(1 for _ in fh)
            if n > MAX_LINES:
                failed = True
                rel = os.path.relpath(path, os.path.join(ROOT, ".."))
                print(f"{rel}: {n} lines (at most {MAX_LINES})", file=sys.stderr)
    if failed:
        return 1
    print(f"layering: {len(graph)} modules, no cycles, no file over {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
