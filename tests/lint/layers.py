#!/usr/bin/env python3
"""The layering rules of docs/design.md, checked from the sources.

- server/'s modules, server/cluster/'s included, include each other
  without a cycle (a module is a .c/.h pair: conn.c and conn.h are one
  node; cluster/etcd.c and cluster/etcd.h are the node cluster/etcd);
- cluster mode is wired in at one place: outside server/cluster/, only
  WIRING (the resource, and the server that starts it) includes its
  headers, so stats, routes and the rest compile nothing of it;
- lib/ includes nothing from server/ (the runtime knows no HTTP);
- libevent's headers appear only in lib/loop.c and lib/loop.h.

Usage: layers.py ROOT. Prints each violation and exits 1, or prints
"layers: ok" and exits 0."""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

# The files outside server/cluster/ that may include its headers. server.h
# stands in for server.c until server.c includes cluster/cluster.h itself.
WIRING = {"server/resource.c", "server/server.c"}


def modules(root, folder):
    """{module: set of included header names} for folder's .c and .h files."""
    out = {}
    for name in sorted(os.listdir(os.path.join(root, folder))):
        base, ext = os.path.splitext(name)
        if ext not in (".c", ".h"):
            continue
        with open(os.path.join(root, folder, name)) as f:
            text = f.read()
        deps = out.setdefault(base, set())
        for kind, header in INCLUDE.findall(text):
            deps.add((kind, header, name))
    return out


def find_cycle(graph):
    """A list of nodes forming a cycle, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def resolve(mod, header, server):
    """The server/ module a quoted include names, or None: a header beside
    the includer comes first, as the preprocessor looks for it."""
    base = os.path.splitext(header)[0]
    folder = os.path.dirname(mod)
    for candidate in (os.path.join(folder, base) if folder else base, base):
        if candidate in server:
            return candidate
    return None


def main(root):
    problems = []
    server = modules(root, "server")
    for mod, deps in modules(root, os.path.join("server", "cluster")).items():
        server["cluster/" + mod] = deps
    lib = modules(root, "lib")
    graph = {}
    for mod, deps in server.items():
        graph[mod] = set()
        for kind, header, name in deps:
            dep = resolve(mod, header, server) if kind == '"' else None
            if not dep or dep == mod:
                continue
            graph[mod].add(dep)
            where = os.path.join("server", os.path.dirname(mod), name)
            if (dep.startswith("cluster/") and not mod.startswith("cluster/")
                    and where not in WIRING):
                problems.append(f"{where} includes cluster mode's {header}")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("server/ include cycle: " + " -> ".join(cycle))
    for mod, deps in lib.items():
        for kind, header, name in deps:
            if kind == '"' and os.path.splitext(header)[0] in server:
                problems.append(f"lib/{name} includes server's {header}")
    for folder, mods in (("server", server), ("lib", lib)):
        for mod, deps in mods.items():
            for kind, header, name in deps:
                where = os.path.join(folder, os.path.dirname(mod), name)
                if header.startswith("event2/") and where not in (
                        "lib/loop.c", "lib/loop.h"):
                    problems.append(f"{where} includes libevent's {header}")
    for p in problems:
        print("layers:", p)
    if not problems:
        print("layers: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
