#!/usr/bin/env bash
# Checks that includes point down the layers of framework/src (docs/architecture.md): a file in
# one layer includes only from its own layer, lower layers and the public API; the public API
# (framework/include/difflab) and the plugins include nothing from framework/src.
#   scripts/check_layers.sh [repository root]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
exec python3 - "$root" <<'PY'
import os, re, sys
root = sys.argv[1]
# Bottom to top; the same order as the layer comments in each layer's main header.
layers = ["api", "loader", "progress", "io", "config", "store", "report", "training", "accel",
          "engine", "launch"]
rank = {name: i for i, name in enumerate(layers)}
include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
errors, files = [], 0

def check(path, allowed):
    """allowed(first path component or None) -> error text or None."""
    global files
    files += 1
    with open(path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            match = include.match(line)
            if not match:
                continue
            target = match.group(1)
            head = target.split("/")[0] if "/" in target else None
            why = allowed(head, target)
            if why:
                errors.append(f"{os.path.relpath(path, root)}:{number}: includes \"{target}\": {why}")

def sources(folder):
    for directory, _, names in os.walk(os.path.join(root, folder)):
        for name in sorted(names):
            if name.endswith((".hpp", ".cpp", ".h")):
                yield os.path.join(directory, name)

src = os.path.join(root, "framework", "src")
for layer in sorted(os.listdir(src)):
    if not os.path.isdir(os.path.join(src, layer)):
        continue
    if layer not in rank:
        errors.append(f"framework/src/{layer}: a folder that is not a layer (add it to scripts/check_layers.sh)")
        continue
    def in_layer(head, target, layer=layer):
        if head == "difflab":
            return None
        if head in rank:
            if rank[head] > rank[layer]:
                return f"layer '{layer}' may not use '{head}', which sits above it"
            return None
        if os.path.exists(os.path.join(src, layer, target)):
            return "name it by its layer (\"" + layer + "/" + target + "\")"
        return None  # generated or third-party
    for path in sources(os.path.join("framework", "src", layer)):
        check(path, in_layer)
for folder in ["framework/include", "plugins", "examples"]:
    def public_only(head, target):
        if head in rank:
            return "the public API and plugins use framework/include/difflab only"
        return None
    for path in sources(folder):
        check(path, public_only)

for error in errors:
    print(error)
if errors:
    print(f"check_layers: {len(errors)} include(s) against the layering")
    sys.exit(1)
print(f"check_layers: {files} files, every include points down")
PY
