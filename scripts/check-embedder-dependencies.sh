#!/usr/bin/env bash
# An embedder who depends on the WasmUnwind library resolves no third-party
# package: this builds a package of its own that depends on the library by
# path, with an empty package cache, and fails if anything was fetched into
# its checkouts — or if the library's product does not build and run there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/embedder/Sources/Embedder"
cat > "$work/embedder/Package.swift" <<MANIFEST
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "Embedder",
    dependencies: [.package(name: "WasmUnwind", path: "$root")],
    targets: [.executableTarget(name: "Embedder", dependencies: [.product(name: "WasmUnwind", package: "WasmUnwind")])])
MANIFEST
cat > "$work/embedder/Sources/Embedder/main.swift" <<'SOURCE'
import WasmUnwind
let limits = RuntimeLimits()
print("walked \(Backtrace.capture(limits).frames.count) frames")
SOURCE
cd "$work/embedder"
swift build --cache-path "$work/cache" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
fetched=$(ls .build/checkouts 2>/dev/null || true)
if [ -n "$fetched" ]; then
  echo "check-embedder-dependencies: an embedder of WasmUnwind resolved: $fetched" >&2
  exit 1
fi
output=$(.build/debug/Embedder)
[ "$output" = "walked 0 frames" ] || { echo "check-embedder-dependencies: the embedder printed: $output" >&2; exit 1; }
echo "check-embedder-dependencies: the library builds in a package of its own and resolves no other package"
