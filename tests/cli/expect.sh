# Helpers for the command-line test scripts (sourced): `expect` runs a
# command and checks its exit status and a fragment of its output; `check`
# reports a condition's status. Both count failures in $fails.
fails=${fails:-0}

expect() {  # expect NAME WANT_STATUS WANT_FRAGMENT -- command...
  local name=$1 want=$2 frag=$3; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if [[ $status -ne $want ]]; then
    echo "FAIL $name: exit $status, want $want; output: ${out:0:1500}"; fails=$((fails+1)); return
  fi
  if [[ -n "$frag" && "$out" != *"$frag"* ]]; then
    echo "FAIL $name: output lacks '$frag': ${out:0:1500}"; fails=$((fails+1)); return
  fi
  echo "ok   $name"
}

check() {  # check NAME CONDITION_STATUS DETAIL
  if [[ $2 -eq 0 ]]; then echo "ok   $1"; else echo "FAIL $1: $3"; fails=$((fails+1)); fi
}
