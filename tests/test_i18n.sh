#!/bin/sh
# The Persian catalog: complete, well-formed, and used by the program.
. "$(dirname "$0")/lib.sh"
po=$SK_SRCDIR/po/fa.po
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! command -v msgfmt >/dev/null 2>&1; then
	sk_skip "fa.po compiles" "msgfmt not installed"
	sk_done
	exit $?
fi
check "fa.po compiles with format checks" msgfmt --check -o "$tmp/sokhan.mo" "$po"
stats=$(msgfmt --statistics -o /dev/null "$po" 2>&1)
check "fa.po has no untranslated or fuzzy messages" sh -c "echo '$stats' | grep -qv -e untranslated -e fuzzy"

# every message the sources mark is in the catalog
if command -v xgettext >/dev/null 2>&1; then
	(cd "$SK_SRCDIR" && xgettext --keyword=_ --keyword=N_ --from-code=UTF-8 -o "$tmp/sokhan.pot" -f po/POTFILES.in)
	missing=$(msgcmp "$po" "$tmp/sokhan.pot" 2>&1 | grep -c 'this message is used but not defined')
	check "every source message is translated ($missing missing)" test "$missing" -eq 0
	# and every file with messages is listed in POTFILES.in
	unlisted=$(cd "$SK_SRCDIR" && grep -l '_("' engine/*.c engine/*/*.c src/*.c ui/*.c 2>/dev/null | while read -r f; do grep -qx "$f" po/POTFILES.in || echo "$f"; done)
	check "POTFILES.in lists every file with messages ${unlisted:+(missing: $unlisted)}" test -z "$unlisted"
fi

mkdir -p "$tmp/loc/fa/LC_MESSAGES"
cp "$tmp/sokhan.mo" "$tmp/loc/fa/LC_MESSAGES/sokhan.mo"
if locale -a 2>/dev/null | grep -qi '^fa_IR.utf8$'; then
	out=$(SOKHAN_LOCALEDIR=$tmp/loc LC_ALL=fa_IR.UTF-8 LANGUAGE=fa $SOKHAN --help 2>&1)
	check "sokhan --help is Persian under LANG=fa_IR.UTF-8" sh -c "echo \"\$1\" | grep -q 'فرمان'" _ "$out"
	err=$(SOKHAN_LOCALEDIR=$tmp/loc LC_ALL=fa_IR.UTF-8 LANGUAGE=fa $SOKHAN info --model /nonexistent 2>&1)
	check "runtime errors are Persian too" sh -c "echo \"\$1\" | grep -q 'خطا'" _ "$err"
else
	sk_skip "sokhan --help is Persian under LANG=fa_IR.UTF-8" "locale fa_IR.UTF-8 not installed"
fi
sk_done
