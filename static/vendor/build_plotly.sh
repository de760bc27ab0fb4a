#!/usr/bin/env bash
# Rebuild plotly-<version>-latentmap.min.js: plotly.js with only the trace types the pages use.
#
#   static/vendor/build_plotly.sh            # rebuild the bundle in place, print its sha256
#   static/vendor/build_plotly.sh --check    # rebuild into a temporary file, fail unless identical
#
# Inputs, all pinned: plotly-build/package.json + package-lock.json (plotly.js, esbuild and the
# esbuild plugins plotly.js's own build uses, with their npm integrity hashes) and plotly-build/
# build.mjs (plotly.js v4.1.1's partial-bundle recipe). Needs node and npm, and the npm registry;
# nothing is installed outside a temporary directory. To change the trace types, edit TRACES (the
# test tests/e2e/test_plotly_bundle.py says which ones the pages ask for); to move to another
# plotly.js, change its version in package.json, run `npm install --package-lock-only` in
# plotly-build/, PLOTLY_JS_VERSION in app/routes/pages.py, then this script.
set -euo pipefail

TRACES=scatter,scattergl,heatmap
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# A fixed directory, not mktemp: plotly.js's inline-CSS plugin names its <style> element after the
# CSS file's absolute path, so the path is part of the output.
work=/tmp/latentmap-plotly-build
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

cp "$here/plotly-build/package.json" "$here/plotly-build/package-lock.json" "$here/plotly-build/build.mjs" "$work/"
# --ignore-scripts: no install script runs (esbuild's binary comes from its @esbuild/<platform> package).
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
version="$(cd "$work" && node -p "require('plotly.js/package.json').version")"
target="$here/plotly-$version-latentmap.min.js"
out="$work/plotly-$version-latentmap.min.js"
(cd "$work" && node build.mjs "$out" latentmap "$TRACES")
echo "node $(node --version), npm $(npm --version), esbuild $(cd "$work" && node -p "require('esbuild/package.json').version")"

if [[ "${1:-}" == "--check" ]]; then
    if cmp -s "$out" "$target"; then
        echo "identical to $target"
    else
        echo "DIFFERENT from $target" >&2
        exit 1
    fi
else
    cp "$out" "$target"
fi
sha256sum "$target"
wc -c < "$target" | xargs printf '%s bytes\n'
