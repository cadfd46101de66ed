#!/usr/bin/env bash
# The house rules anyone can check: no source file over 450 lines and no function over 80
# (tests, examples' test modules and generated code aside), rustfmt and clippy clean, and
# at most a dozen repeated blocks that are not boilerplate (where `duplicates` is installed).
# Prints each offender; exits non-zero if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
sources() {
    git ls-files '*.rs' | grep -v -E '(^|/)tests?(/|\.rs$)|(^|/)tests_[a-z_]*\.rs$|/tests/'
}
while read -r file; do
    # Lines before the test module, if any.
    lines=$(awk '/^[[:space:]]*#\[cfg\(test\)\]/ { exit } END { print NR }' "$file")
    if [ "$lines" -gt 450 ]; then
        echo "$file: $lines lines before its tests (limit 450)"
        status=1
    fi
    # A function runs from its `fn` line to the `}` at the same indentation; test modules
    # (from `#[cfg(test)]` on) are not counted.
    awk -v file="$file" '
        /^[[:space:]]*#\[cfg\(test\)\]/ { exit }
        match($0, /^[[:space:]]*(pub(\([a-z]+\))? )?(const )?(async )?(unsafe )?fn [A-Za-z0-9_]+/) && $0 !~ /;[[:space:]]*$/ {
            if (name == "") { indent = match($0, /[^ ]/) - 1; name = $0; start = NR; sub(/^[[:space:]]*/, "", name); sub(/\(.*/, "", name) }
            next
        }
        name != "" && $0 ~ "^" sprintf("%" indent "s", "") "}" && match($0, /[^ ]/) - 1 == indent {
            if (NR - start + 1 > 80) { printf "%s:%d: %s is %d lines (limit 80)\n", file, start, name, NR - start + 1; bad = 1 }
            name = ""
        }
        END { exit bad }
    ' "$file" || status=1
done < <(sources)
# Repeated code, counted by `duplicates` (pairs of places sharing 6+ lines). Pairs within
# the .proto schemas are not counted: messages declare fields of the same shape, which
# no helper could share. It is not on every machine (CI's may lack it): there the check
# is skipped, and says so.
if command -v duplicates >/dev/null; then
    report=$(duplicates --most 200 --seconds 120)
    repeats=$(grep -E '^D[0-9]+ ' <<<"$report" | grep -v ' boilerplate' |
        grep -v -E '^D[0-9]+ [^ ]+\.proto:[0-9-]+ ~ [^ ]+\.proto:' || true)
    count=$(grep -c . <<<"$repeats" || true)
    if [ "$count" -gt 12 ]; then
        echo "duplicates: $count repeated blocks that are not boilerplate (limit 12):"
        echo "$repeats"
        status=1
    fi
    grep '^incomplete:' <<<"$report" || true
else
    echo "duplicates: not on PATH; the repeated-code check is skipped"
fi
cargo fmt --all -- --check || { echo "cargo fmt: run cargo fmt"; status=1; }
cargo clippy --workspace --all-targets --quiet -- -D warnings || status=1
[ "$status" = 0 ] && echo "house rules: ok"
exit "$status"
