# Side-by-side lanes for the test scripts (sourced by scripts/test-all and
# scripts/contract-suite): one background job per name, each with a log of its own.
#
#   lanes_run OUTDIR PREFIX FUNCTION NAME...
#
# runs `FUNCTION NAME` for every NAME at once, each writing OUTDIR/PREFIX-NAME.log (which
# ends with the lane's seconds, "[Ns]"); then prints one line per lane (passed or FAILED,
# its pytest summary, seconds) and the last 60 lines of each failed lane's log. Returns 1
# when a lane failed, with LANES_FAILED holding their names. `set -e` does not apply inside
# FUNCTION (it runs under `||`): a lane of several commands must return on each failure.

LANES_FAILED=()

lanes_run() {
  local out="$1" prefix="$2" fn="$3"
  shift 3
  local -A pids=()
  local name log took summary
  LANES_FAILED=()
  for name in "$@"; do
    log="$out/$prefix-$name.log"
    ( s=$SECONDS; rc=0; "$fn" "$name" > "$log" 2>&1 || rc=$?
      echo "[$((SECONDS - s))s]" >> "$log"; exit "$rc" ) &
    pids[$name]=$!
  done
  for name in "$@"; do wait "${pids[$name]}" || LANES_FAILED+=("$name"); done
  for name in "$@"; do
    log="$out/$prefix-$name.log"
    took="$(tail -n 1 "$log")"
    summary="$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped)|no tests ran' "$log" \
               | tail -n 1 | tr -d '=' | xargs || true)"
    if [[ " ${LANES_FAILED[*]} " == *" $name "* ]]; then
      echo "--- $name FAILED $took: ${summary:-no pytest summary} ($log)"
      tail -n 60 "$log" | sed "s/^/  $name | /"
    else
      echo "--- $name passed $took: $summary"
    fi
  done
  [ "${#LANES_FAILED[@]}" -eq 0 ]
}
