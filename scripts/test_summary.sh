#!/usr/bin/env bash
# What a ctest run really did: how many tests ran (passed, failed), how many
# were skipped and why, and whether anything registered neither ran nor was
# skipped for a reason it can name. Reads the JUnit file ctest wrote with
# --output-junit (each test's output in it: run ctest with
# --test-output-size-passed/--test-output-size-failed large enough that a
# reason printed late is kept).
#
# A skip is "named" when the test's output says why: a "[ NF-SKIP  ] why"
# line (tests/integration/helpers.c's h_skip) or a "SKIP: why" line (the
# scripts). Fails (exit 1) when
#     ran < registered - named skips
# i.e. when a test was skipped without a reason, not run (a missing
# executable, a failed fixture), disabled, or missing from the run.
# Failures of tests that ran are ctest's to report; this check adds none.
#
# Usage: scripts/test_summary.sh BUILD JUNIT [ctest selection args, e.g. -R REGEX]
#   the selection args must be the ones the run used, so that "registered"
#   counts the same tests (ctest -N with them).
set -euo pipefail
BUILD=${1:?usage: test_summary.sh BUILD JUNIT [ctest args]}
JUNIT=${2:?usage: test_summary.sh BUILD JUNIT [ctest args]}
shift 2
[ -s "$JUNIT" ] || { echo "test_summary: no $JUNIT (ctest --output-junit)" >&2; exit 1; }
registered=$(cd "$BUILD" && ctest -N "$@" | sed -n 's/^Total Tests: *\([0-9]*\)$/\1/p')
[ -n "$registered" ] || { echo "test_summary: ctest -N in $BUILD gave no count" >&2; exit 1; }
exec /usr/bin/python3 - "$JUNIT" "$registered" "$BUILD" <<'EOF'
import re
import sys
import xml.etree.ElementTree as ET

junit, registered, build = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cases = ET.parse(junit).getroot().findall("testcase")
passed, failed, named, unnamed, notrun = [], [], [], [], []
reason_re = re.compile(r"^\[ NF-SKIP  \] (.*)$|^SKIP: (.*)$", re.M)
for c in cases:
    name, status = c.get("name"), c.get("status")
    out = c.findtext("system-out") or ""
    sk = c.find("skipped")
    if status == "run":
        passed.append(name)
    elif status == "fail":
        failed.append(name)
    elif status == "notrun" and sk is not None and sk.get("message", "").startswith("SKIP_RETURN_CODE"):
        reasons = sorted({(m.group(1) or m.group(2)).strip() for m in reason_re.finditer(out)})
        (named if reasons else unnamed).append((name, reasons))
    else:
        why = sk.get("message") if sk is not None else status
        notrun.append((name, why))

ran = len(passed) + len(failed)
print(f"test summary ({build}): {registered} registered, {ran} ran ({len(passed)} passed, {len(failed)} failed), "
      f"{len(named) + len(unnamed)} skipped ({len(named)} with a reason), {len(notrun)} not run")
by_reason = {}
for name, reasons in named:
    for r in reasons:
        by_reason.setdefault(r, []).append(name)
for r, names in sorted(by_reason.items()):
    print(f"  skipped: {r}: {len(names)} test(s): {' '.join(sorted(names))}")
for name, _ in unnamed:
    print(f"  skipped WITHOUT a reason: {name}")
for name, why in notrun:
    print(f"  NOT RUN: {name} ({why})")
missing = registered - len(cases)
if missing > 0:
    print(f"  {missing} registered test(s) are missing from the run")
floor = registered - len(named)
if ran < floor:
    print(f"FAIL: {ran} tests ran, fewer than the {registered} registered minus the {len(named)} skips with a reason "
          f"({floor})")
    sys.exit(1)
print(f"ok: {ran} ran >= {registered} registered - {len(named)} named skips")
EOF
