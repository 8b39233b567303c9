#!/usr/bin/env bash
# The delete of a file set's step: run the step's delete script ($1, may be empty), then
# remove the files its manifest lists, then the manifest. A replacement creates the new
# step before it deletes the old one: when the manifest holds another generation, the
# newer step owns the set and nothing runs. A file another set's manifest lists stays.
# Parameters: FILE_SET_MANIFEST FILE_SET_GENERATION; $1: the delete script's text.
set -euo pipefail
manifest="${FILE_SET_MANIFEST:?}"
generation=""
paths=()
if [[ -f $manifest ]]; then
  {
    read -r generation || true
    mapfile -t paths
  } <"$manifest"
fi
if [[ -n $generation && $generation != "${FILE_SET_GENERATION:?}" ]]; then
  echo "left alone: ${manifest} holds a newer generation of this step"
  exit 0
fi
if [[ -n ${1:-} ]]; then bash -c "$1"; fi

for path in "${paths[@]}"; do
  [[ -n $path ]] || continue
  for other in "$(dirname "$manifest")"/*; do
    [[ -f $other && $other != "$manifest" ]] || continue
    if grep -qxF -- "$path" "$other"; then continue 2; fi  # no pipe: see file-set.sh
  done
  rm -f -- "$path"
done
rm -f -- "$manifest"
echo "removed the files of ${manifest}"
