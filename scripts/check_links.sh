#!/usr/bin/env bash
# Checks the relative links of README.md and docs/**/*.md: every [text](target) that is not a
# URL (http:, https:, mailto:) must name a file or folder that exists, relative to the linking
# file's folder; a #anchor on a .md target (or a bare #anchor, on the page itself) must match a
# heading's GitHub-style slug there. Links inside fenced code blocks and inline code are ignored.
#   scripts/check_links.sh [REPO_ROOT]     (default: this script's parent folder)
# Prints "file:line: broken link target" for each broken link and exits 1; else a one-line summary.
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
exec python3 - "$root" <<'PY'
import os, re, sys, unicodedata

root = os.path.abspath(sys.argv[1])

def markdown_files():
    files = []
    if os.path.isfile(os.path.join(root, "README.md")):
        files.append("README.md")
    for folder, dirs, names in os.walk(os.path.join(root, "docs")):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".md"):
                files.append(os.path.relpath(os.path.join(folder, name), root))
    return files

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")

def lines_outside_fences(text):
    """(line number, line) for every line that is not inside a fenced code block."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and line.strip() == m.group(1):
            fence = None

def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link's text stays
    text = re.sub(r"<[^>]+>", "", text)                         # HTML tags go
    text = text.strip().lower()
    out = []
    for ch in text:
        if ch == " ":
            out.append("-")
        elif ch in "-_" or ch.isalnum() or unicodedata.category(ch).startswith("M"):
            out.append(ch)
    return "".join(out)

anchor_cache = {}
def anchors(path):
    if path not in anchor_cache:
        seen = {}
        found = set()
        with open(path, encoding="utf-8") as f:
            for _, line in lines_outside_fences(f.read()):
                m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
                if not m:
                    continue
                base = slug(m.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
        anchor_cache[path] = found
    return anchor_cache[path]

INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")

broken = []
links = 0
files = markdown_files()
for rel in files:
    path = os.path.join(root, rel)
    folder = os.path.dirname(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for number, line in lines_outside_fences(text):
        # Inline code spans are blanked out, but a link whose text is code stays a link.
        scan = INLINE_CODE.sub(lambda m: "x" * len(m.group(0)), line)
        for m in LINK.finditer(scan):
            target = line[m.start(1):m.end(1)]
            if not target or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue   # http:, https:, mailto: and other URLs
            links += 1
            file_part, _, anchor = target.partition("#")
            if file_part:
                resolved = os.path.normpath(os.path.join(folder, file_part))
                if not os.path.exists(resolved):
                    broken.append(f"{rel}:{number}: broken link {target}")
                    continue
            else:
                resolved = path
            if anchor and resolved.endswith(".md") and os.path.isfile(resolved):
                if anchor.lower() not in anchors(resolved):
                    broken.append(f"{rel}:{number}: broken link {target} (no heading with that anchor)")

for b in broken:
    print(b)
if broken:
    print(f"{len(broken)} broken of {links} links in {len(files)} files", file=sys.stderr)
    sys.exit(1)
print(f"{links} links in {len(files)} files, all resolve")
PY
