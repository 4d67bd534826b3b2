#!/usr/bin/env bash
# Runs every shell block of the README's walkthroughs (from "## Quick start" up to
# "## Configuration"), in order, in one shell, on a fresh copy of the repository's tracked files,
# so that a walkthrough which breaks itself fails the test command.
#
# The README's text runs unmodified. Only its environment is arranged: `./target/release/crier`
# and `./target/release/examples/provider_sim` are the debug builds (a release build would add
# ~9 minutes to CI), `cargo run --release -- serve` starts that binary in the background and
# waits until it answers (the README asks for a second terminal), and `cargo build --release
# --examples` is a no-op (scripts/test.sh has built them). Every command must exit 0; the first
# that does not stops the run and is printed with its block.
#
# Usage: bash scripts/readme_walkthrough.sh   (after `cargo build --locked --bins --examples`)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="$repo/target/debug/crier"
sim="$repo/target/debug/examples/provider_sim"
for f in "$bin" "$sim"; do
  [ -x "$f" ] || { echo "readme_walkthrough: $f is missing; run cargo build --locked --bins --examples first" >&2; exit 1; }
done
for port in 8080 8081 9999; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "readme_walkthrough: port $port is in use; the README's walkthrough needs 8080, 8081 and 9999 free" >&2
    exit 1
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/crier-readme.XXXXXX")"
(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$work")
mkdir -p "$work/target/release/examples"
ln -s "$bin" "$work/target/release/crier"
ln -s "$sim" "$work/target/release/examples/provider_sim"

# The blocks: 4-space-indented lines after a blank line, between the two headings.
python3 - "$repo/README.md" >"$work/walkthrough.sh" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("## Quick start"))
end = next(i for i, l in enumerate(lines) if i > start and l.startswith("## Configuration"))
blocks, cur, prev_blank = [], None, False
for l in lines[start:end]:
    if l.startswith("    ") and (cur is not None or prev_blank):
        if cur is None:
            cur = []
        cur.append(l[4:])
    else:
        if cur is not None:
            blocks.append(cur)
            cur = None
        prev_blank = l.strip() == ""
if cur is not None:
    blocks.append(cur)
if not blocks:
    sys.exit("README.md: no shell blocks between '## Quick start' and '## Configuration'")
for n, b in enumerate(blocks, 1):
    text = "\n".join(b)
    print(f"__block {n} {len(blocks)} <<'__CRIER_BLOCK__'\n{text}\n__CRIER_BLOCK__")
    print(text)
PY

cat >"$work/prelude.sh" <<'SH'
set -eEuo pipefail
shopt -s expand_aliases
__wait_for() {  # the README's server was started "in another terminal": wait until it answers
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "readme_walkthrough: nothing answered on port $1 after 30 s" >&2
  return 1
}
cargo() {
  case "$*" in
    # In its own subshell, so it is not one of the walkthrough's jobs (%1 is the README's first `&`).
    "run --release -- serve") (./target/release/crier serve >serve.log 2>&1 & echo $! >serve.pid); __wait_for 8080 ;;
    "build --release --examples") : ;;
    *) echo "readme_walkthrough: the README runs 'cargo $*', which this test does not know how to stand in for" >&2; return 1 ;;
  esac
}
__block() { __current="block $1 of $2:"$'\n'"$(cat)"; echo "== README $__current" | head -n 2; }
trap 'rc=$?; echo "readme_walkthrough: FAILED (exit $rc) at line: $BASH_COMMAND" >&2; echo "in README $__current" >&2; exit $rc' ERR
trap 'kill $(jobs -p) $(cat serve.pid 2>/dev/null) 2>/dev/null || true' EXIT
SH

cd "$work"
echo "== README walkthrough in $work"
env -u CRIER_URL -u CRIER_TOKEN -u CRIER_DATA -u CRIER_CHANNELS -u CRIER_CONFIG -u CRIER_BIND \
  bash -c 'source ./prelude.sh; source ./walkthrough.sh'
echo "== README walkthrough: every block ran"
rm -rf "$work"
