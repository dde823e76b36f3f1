#!/usr/bin/env bash
# Compile cost of the checkout module (examples/checkout/app.rs: `services!`, one `#[api]` module
# with the `Summary` endpoint), measured with rustc checking it as `cargo check` does (metadata
# only, the dev profile's dependencies), in three versions:
#
#   macros    the module as written: the macros run, then their output is checked
#   expanded  the macros' output pasted in (ORCHESTRATE_MACROS_DEBUG): the same code, no macro runs
#   plain     the structs alone: no `services!`, no `#[api]`/`#[endpoint]`/`#[call]`/... attributes
#
# macros − expanded is the time of the macros themselves (goal: at most 50 ms);
# macros − plain is all the framework adds to checking the module.
#
#   bench/compile.sh [runs]      (default 15; medians and min–max of the runs, interleaved)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-15}"
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench-compile"
mkdir -p "$out"
command -v jq >/dev/null 2>&1 || { echo "bench/compile.sh needs jq (apt-get install -y jq)" >&2; exit 1; }

echo "building the dependencies (dev profile)" >&2
artifacts=$(cargo build --example checkout --message-format=json 2>/dev/null | jq -r '
  select(.reason == "compiler-artifact" and (.target.kind | index("lib")))
  | .target.name + " " + (.filenames | map(select(endswith(".rmeta"))) | .[0])')
extern() { printf '%s\n' "$artifacts" | awk -v name="$1" '$1 == name { print "--extern"; print name "=" $2 }'; }
mapfile -t externs < <(extern orchestrate; extern serde; extern serde_json)
deps="$target/debug/deps"

check() { # check <crate root>: rustc as `cargo check` would run it on that module
  rustc --edition 2024 --crate-type lib --crate-name checkout_compile_cost --emit=metadata \
    -o "$out/checkout_compile_cost.rmeta" -L "dependency=$deps" "${externs[@]}" "$1"
}

app="$root/examples/checkout/app.rs"
for variant in macros expanded plain; do
  printf '#![allow(dead_code)]\n#[path = "%s"]\nmod app;\n' "$out/$variant-app.rs" >"$out/$variant.rs"
done
cp "$app" "$out/macros-app.rs"

# The expansions, as the macros print them.
ORCHESTRATE_MACROS_DEBUG=1 check "$out/macros.rs" 2>"$out/expansions.txt"
expansion() { # expansion <item>
  awk -v begin="// ---- orchestrate expansion of \`$1\` ----" -v end="// ---- end of \`$1\` ----" '
    $0 == end { on = 0 } on { print } $0 == begin { on = 1 }' "$out/expansions.txt"
}
expansion services >"$out/services.expansion"
expansion checkout >"$out/checkout.expansion"
[ -s "$out/services.expansion" ] && [ -s "$out/checkout.expansion" ] || { echo "no expansions printed" >&2; exit 1; }

# expanded: `orchestrate::services! { .. }` and `#[orchestrate::api] pub mod checkout { .. }` (each
# closed by a `}` in column 0) replaced by what they expand to.
awk -v services="$out/services.expansion" -v checkout="$out/checkout.expansion" '
  function paste(file,   line) { while ((getline line < file) > 0) print line; close(file) }
  skip && /^}/ { skip = 0; next }
  skip { next }
  /^orchestrate::services! *\{/ { paste(services); skip = 1; next }
  /^#\[orchestrate::api\]/ { paste(checkout); skip = 1; next }
  { print }' "$app" >"$out/expanded-app.rs"
# plain: no `services!`, no orchestrate attributes.
awk '
  skip && /^}/ { skip = 0; next }
  skip { next }
  /^orchestrate::services! *\{/ { skip = 1; next }
  /^[[:space:]]*#\[(orchestrate::api|endpoint|input|call|compute)[](]/ { next }
  { print }' "$app" >"$out/plain-app.rs"

for variant in macros expanded plain; do
  check "$out/$variant.rs" || { echo "the $variant version does not compile" >&2; exit 1; }
done

: >"$out/times.tsv"
for _ in $(seq 1 "$runs"); do
  for variant in macros expanded plain; do
    start=$(date +%s%N)
    check "$out/$variant.rs"
    printf '%s\t%s\n' "$variant" $((($(date +%s%N) - start) / 1000)) >>"$out/times.tsv"
  done
done

stats() { # stats <variant>: "median min max" in ms
  awk -F'\t' -v v="$1" '$1 == v { print $2 / 1000 }' "$out/times.tsv" | sort -n | awk '
    { a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.0f %.0f %.0f", m, a[1], a[NR] }'
}
read -r mm mlo mhi <<<"$(stats macros)"
read -r em elo ehi <<<"$(stats expanded)"
read -r pm plo phi <<<"$(stats plain)"
echo "| checking examples/checkout/app.rs ($runs runs) | median ms | min–max ms |"
echo "|---|---|---|"
echo "| as written (macros run) | $mm | $mlo–$mhi |"
echo "| macro output pasted in (no macro runs) | $em | $elo–$ehi |"
echo "| plain structs (no orchestrate) | $pm | $plo–$phi |"
echo "| **macro expansion** (as written − pasted) | $((mm - em)) | |"
echo "| all orchestrate adds (as written − plain) | $((mm - pm)) | |"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); files in $out" >&2
