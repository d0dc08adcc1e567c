#!/usr/bin/env bash
# All tests: set up (idempotent), type-check, lint and the format check (Prettier), then the vitest suite against real
# docker-registry, skopeo and umoci. Ends with a plain "N passed, N failed" line.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh" || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
source "$root/scripts/env.sh"
cd "$root"
failed_checks=0
npx tsc -p tsconfig.test.json --noEmit || { echo "type-check failed"; failed_checks=$((failed_checks + 1)); }
npx eslint src test bench || { echo "lint failed"; failed_checks=$((failed_checks + 1)); }
npx prettier --check . > /dev/null || { npx prettier --list-different . | head -20; echo "format check failed: run npm run format"; failed_checks=$((failed_checks + 1)); }
report="$(mktemp)"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const extra = Number(process.argv[2]);
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests + r.numPendingTests + r.numTodoTests + extra} failed`);
' "$report" "$failed_checks" 2> /dev/null || { echo "0 passed, 1 failed"; status=1; }
rm -f "$report"
[ "$status" -eq 0 ] && [ "$failed_checks" -eq 0 ]
