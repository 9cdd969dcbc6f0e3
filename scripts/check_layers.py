#!/usr/bin/env python3
"""netframe — the layer check: a layer uses only the layers below it.

usage: scripts/check_layers.py [BUILD_DIR]   (default: build)

Reads two things and maps both to folders of src/:
  * every #include "..." line of src/**/*.c and src/**/*.h (a public header
    include/netframe/X.h belongs to the layer that implements it, PUBLIC below);
  * the nf_ / nf__ symbols each object file of the library defines and uses
    (`nm` of BUILD_DIR/CMakeFiles/nf_obj.dir/src/**/*.o).
An edge from a file in folder A to folder B is an error when B is above A in
LAYERS. Every folder has its own rank, so a circle between files of different
folders always contains such an edge and is reported by the same test.

Edges the re-layout has not removed yet are listed, one a line, in
scripts/layers.allow ("FILE -> TARGET"): they are printed as "known" and do not
fail the check; a new one fails it. An entry that no longer occurs is printed
as "gone" (delete it from the list). Exit status: 0 clean, 1 a new upward
edge, 2 usage (no build directory).
"""
import os
import re
import subprocess
import sys

# Lowest first. A new folder takes its place here (see docs/architecture.md).
LAYERS = ["base", "core", "backend", "net", "filter", "http", "ws", "app", "pubsub"]
RANK = {name: i for i, name in enumerate(LAYERS)}

# Public headers: the layer that implements each (netframe.h, the umbrella,
# is the top: only programs include it).
PUBLIC = {
    "buf.h": "base", "error.h": "base",
    "loop.h": "core", "timer.h": "core",
    "tcp.h": "net", "udp.h": "net",
    # filter.h is the plug point: the transport declares it and calls
    # through it (src/net/filter_stack.c); filters implement it.
    "filter.h": "net",
    "flow.h": "filter", "tls.h": "filter", "proxy.h": "filter",
    "http.h": "http",
    "ws.h": "ws", "ws_codec.h": "ws",
    "server.h": "app", "reconnect.h": "app",
    "netframe.h": "top",
}
RANK["top"] = len(LAYERS)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")


def folder_of(rel):
    """src-relative path -> its layer folder (first path component)."""
    return rel.split("/", 1)[0]


def include_edges():
    edges = []
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for dirpath, _, files in os.walk(SRC):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, SRC)
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    m = inc.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    if target.startswith("netframe/"):
                        layer = PUBLIC.get(target[len("netframe/"):])
                    elif "/" in target:
                        layer = folder_of(target)
                    else:  # same directory
                        layer = folder_of(rel)
                    if layer is None or layer not in RANK:
                        continue
                    edges.append((rel, layer, "include \"%s\"" % target))
    return edges


def nm(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1]
        if not name.startswith("nf_"):
            continue
        if kind == "U":
            used.add(name)
        elif kind in "TDBRtdbr" and kind.isupper():
            defined.add(name)
    return defined, used


def symbol_edges(build):
    objdir = os.path.join(build, "CMakeFiles", "nf_obj.dir", "src")
    if not os.path.isdir(objdir):
        sys.exit("check_layers: no %s (build first)" % objdir)
    owner, uses = {}, {}
    for dirpath, _, files in os.walk(objdir):
        for f in files:
            if not f.endswith(".o"):
                continue
            obj = os.path.join(dirpath, f)
            rel = os.path.relpath(obj, objdir)[: -len(".o")]
            if not os.path.exists(os.path.join(SRC, rel)):
                continue  # a stale object: its source moved or went
            d, u = nm(obj)
            for s in d:
                owner[s] = rel
            uses[rel] = u
    edges = []
    for rel, used in uses.items():
        for s in sorted(used):
            if s in owner:
                edges.append((rel, folder_of(owner[s]), s))
    return edges


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    if not os.path.isdir(build):
        print("check_layers: no build directory %s" % build, file=sys.stderr)
        return 2
    allow_path = os.path.join(ROOT, "scripts", "layers.allow")
    allowed = set()
    if os.path.exists(allow_path):
        with open(allow_path) as fh:
            for line in fh:
                line = line.split("#", 1)[0].strip()
                if line:
                    allowed.add(line)
    bad, known, seen = [], [], set()
    for rel, layer, what in include_edges() + symbol_edges(build):
        src_layer = folder_of(rel)
        if src_layer not in RANK or RANK[layer] <= RANK[src_layer]:
            continue
        key = "%s -> %s" % (rel, what)
        seen.add(key)
        (known if key in allowed else bad).append("%s  [%s uses %s]" % (key, src_layer, layer))
    for k in sorted(set(known)):
        print("known: " + k)
    for k in sorted(allowed - seen):
        print("gone:  " + k + "  (remove it from scripts/layers.allow)")
    for k in sorted(set(bad)):
        print("UPWARD: " + k)
    print("check_layers: layers %s; %d upward edges known (scripts/layers.allow), %d new"
          % (" < ".join(LAYERS), len(set(known)), len(set(bad))))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
