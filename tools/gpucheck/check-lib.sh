# Shell functions the checks share; checks/NN-name.sh source it as "$BUNDLE/check-lib.sh". It
# lives outside checks/ because run.sh runs every checks/*.sh as a check.

# check_begin NN-name: json=$OUT/NN-name.json (the check's result) and work=$OUT/NN-name/ (its
# logs and files, created).
check_begin() {
  json="$OUT/$1.json"
  work="$OUT/$1"
  mkdir -p "$work"
}

# check_result NAME STATUS FIGURES DETAIL: writes the check's result object to $json. FIGURES
# is a JSON object; DETAIL must hold no double quote.
check_result() {
  printf '{"name":"%s","status":"%s","figures":%s,"detail":"%s"}\n' "$1" "$2" "$3" "$4" >"$json"
}

have_python3() {
  command -v python3 >/dev/null 2>&1
}
