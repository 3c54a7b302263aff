#!/usr/bin/env bash
# test_cli_version.sh PEFTBENCH: `peftbench --version` and `peftbench version` (issue 18): exit 0,
# the version, the git revision of the source tree (this checkout is a git repository, so a hex
# revision, "-dirty" when it has uncommitted changes) and the backends built in (cpu always);
# the usage text names --version; extra arguments are a usage error.
set -u
PB=${1:?usage: test_cli_version.sh PATH/TO/peftbench}
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

out=$("$PB" --version 2>&1); rc=$?
[ $rc = 0 ] || bad "--version exit $rc: $out"
echo "$out" | grep -Eq '^peftbench [0-9]+\.[0-9]+\.[0-9]+$' || bad "--version: no 'peftbench X.Y.Z' line: $out"
echo "$out" | grep -Eq '^git [0-9a-f]{7,40}(-dirty)?$' || bad "--version: no 'git <hex rev>' line: $out"
echo "$out" | grep -Eq '^backends: cpu( |,|$)' || bad "--version: no 'backends: cpu' line: $out"
want=$(git -C "$(dirname "$0")/.." rev-parse --short=12 HEAD 2>/dev/null)
[ -z "$want" ] || echo "$out" | grep -q "^git $want" || bad "--version: rev is not HEAD ($want): $out"
out2=$("$PB" version 2>&1); rc=$?
[ $rc = 0 ] && [ "$out2" = "$out" ] || bad "'peftbench version' (exit $rc) differs from --version: $out2"
"$PB" --help | grep -q -- "--version" || bad "usage text does not name --version"
"$PB" --version extra > /dev/null 2>&1; rc=$?
[ $rc = 2 ] || bad "--version extra: exit $rc, want 2"
[ $fail = 0 ] && echo "version: $(echo "$out" | tr '\n' ';')"
exit $fail
