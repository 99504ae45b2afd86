#!/usr/bin/env bash
# Vendor MathJax into paper/_static/mathjax/ so the book renders math with no network at view time.
# One self-contained file: es5/tex-svg-full.js (TeX input with every extension preloaded + SVG
# output with its fonts built in), so MathJax never fetches another component or a font file.
# Needs npm and the npm registry; run it only to change the MathJax version (the result is committed).
set -euo pipefail
VERSION="${1:-3.2.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/paper/_static/mathjax"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null && tar xzf mathjax-*.tgz)
mkdir -p "$dest"
cp "$tmp/package/es5/tex-svg-full.js" "$dest/tex-svg-full.js"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
printf 'MathJax %s (npm package "mathjax"), es5/tex-svg-full.js, Apache-2.0 (see LICENSE).\nVendored by scripts/vendor_mathjax.sh.\n' \
  "$VERSION" > "$dest/README"
sha256sum "$dest/tex-svg-full.js"
