#!/usr/bin/env bash
# Head of a file set's step (render/files.py file_set_script): writes the set's files,
# records them, then runs the step's own script. All or nothing for the files: if anything
# fails (or stdin ends before the apply script), every file it wrote or removed (and its
# manifest) is put back as it was, so the files match the engine's state, which keeps the
# old inputs of a failed update. What the apply script itself changed (a restarted
# service, a file it removed) is its own to undo. Generated lines, one shape each:
#   seoul_put_file MODE BYTES PATH <<'SEOUL_FILE_<digest>'   (the file's content)
#   seoul_file_set MANIFEST GENERATION PATH...
#   seoul_apply <<'SEOUL_APPLY_<digest>'                     (the apply script)
set -euo pipefail

backup_dir=$(mktemp -d)
touched=()
applied=false

# PATH: keep what PATH holds now (or that it is absent), to put it back on failure.
seoul_backup() {
  local index=${#touched[@]}
  touched+=("$1")
  if [[ -e $1 || -L $1 ]]; then cp -a -- "$1" "${backup_dir}/${index}"; fi
}

seoul_rollback() {
  local status=$? index restored=()
  set +e # put back as much as possible, whatever fails on the way
  if [[ $applied != true ]]; then
    ((status != 0)) || status=1 # stdin cut short: the apply script never ran
    for ((index = ${#touched[@]} - 1; index >= 0; index--)); do
      if [[ -e ${backup_dir}/${index} || -L ${backup_dir}/${index} ]]; then
        cp -a -- "${backup_dir}/${index}" "${touched[index]}" && restored+=("${touched[index]}")
      else
        rm -f -- "${touched[index]}"
      fi
    done
    # The labels SELinux gives these paths, whatever the copies in the backup carried.
    if ((${#restored[@]})) && command -v restorecon >/dev/null 2>&1; then
      restorecon -F -- "${restored[@]}"
    fi
    echo "file set not applied: ${#touched[@]} files put back as they were" >&2
  fi
  rm -rf -- "$backup_dir"
  exit "$status"
}
trap seoul_rollback EXIT

# MODE BYTES PATH, content on stdin: keep exactly BYTES bytes (a here-document always
# ends in a newline the file may not have), install as root.
seoul_put_file() {
  seoul_backup "$3"
  head -c "$2" | install -D -m "$1" -o root -g root /dev/stdin "$3"
}

# PATH MANIFEST: true when a file set's manifest other than MANIFEST lists PATH.
seoul_listed_elsewhere() {
  local other
  for other in "$(dirname "$2")"/*; do
    [[ -f $other && $other != "$2" ]] || continue
    # Whole file, no pipe: `grep -q` exiting early would fail a pipe under pipefail.
    # The first line is a hex generation, never a path.
    if grep -qxF -- "$1" "$other"; then return 0; fi
  done
  return 1
}

# MANIFEST GENERATION PATH...: remove what the last run wrote that is no longer in the set
# (unless another set writes it now), then record this run's generation and files.
seoul_file_set() {
  local manifest=$1 generation=$2 old path
  local -A keep=()
  shift 2
  for path in "$@"; do keep[$path]=1; done
  if [[ -f $manifest ]]; then
    while IFS= read -r old; do
      [[ -n $old && -z ${keep[$old]:-} ]] || continue
      if seoul_listed_elsewhere "$old" "$manifest"; then continue; fi
      seoul_backup "$old"
      rm -f -- "$old"
      echo "removed ${old}: no longer in this file set"
    done < <(tail -n +2 "$manifest")
  fi
  install -d -m 0700 -o root -g root "$(dirname "$manifest")"
  seoul_backup "$manifest"
  printf '%s\n' "$generation" "$@" >"$manifest"
}

# The apply script on stdin, run by its own bash (its traps and exits stay its own).
seoul_apply() {
  local script
  script=$(cat)
  bash -c "$script"
  applied=true
}
