#!/usr/bin/env bash
# Every benchmark, each on its own throwaway cluster: ./test/bench/run.sh
# Each script prints its figures next to the machine's own limit measured in
# the same run. Pass script names (engine, webhooks) to run only those.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(engine webhooks peers)
for name in "${names[@]}"; do
    [[ -x "./$name.sh" ]] || { echo "no benchmark $name" >&2; exit 2; }
    printf '\n##### %s #####\n' "$name"
    "./$name.sh"
done
