#!/bin/sh
# Man pages from the built binary's own --help (the option tables in
# cli/src/main.cpp), one per subcommand, with help2man; gzipped as Debian wants.
#   packaging/manpages.sh BUILT_SYNCPROBE OUT_DIR VERSION
set -eu
bin="$1"; out="$2"; version="$3"
work="$out/.wrappers"
mkdir -p "$out/man1" "$work"
# Subcommands and their one-line descriptions, from `syncprobe --help`.
"$bin" --help | awk '/^Subcommands:/ {on=1; next} on && !NF {exit} on {name=$1; $1=""; sub(/^ +/, ""); print name "\t" $0}' \
  > "$work/subcommands"
{
  echo "[SEE ALSO]"
  sep=""
  while IFS="$(printf '\t')" read -r sub desc; do
    printf '%s\\fBsyncprobe-%s\\fR(1)' "$sep" "$sub"; sep=", "
  done < "$work/subcommands"
  echo
  echo ".PP"
  echo "The design, the case format and the results schema are in /usr/share/doc/syncprobe and the project's docs/."
} > "$work/see-also.h2m"
manpage() {  # NAME PROGRAM DESCRIPTION
  help2man --no-info --section=1 --source="syncprobe $version" --manual="syncprobe manual" \
    --name="$3" --include="$work/see-also.h2m" --output="$out/man1/$1.1" "$2"
  gzip -9nf "$out/man1/$1.1"
}
manpage syncprobe "$bin" "what fsync() promises after a write fails, measured per kernel and filesystem"
while IFS="$(printf '\t')" read -r sub desc; do
  w="$work/syncprobe-$sub"
  printf '#!/bin/sh\ncase "$1" in --version) echo "syncprobe-%s %s" ;; *) exec "%s" %s "$@" ;; esac\n' \
    "$sub" "$version" "$bin" "$sub" > "$w"
  chmod +x "$w"
  manpage "syncprobe-$sub" "$w" "$desc"
done < "$work/subcommands"
rm -rf "$work"
