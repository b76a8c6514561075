#!/usr/bin/env bash
# Mutation testing (`make mutation`, not part of `make test`): mutmut mutates the domain's rules
# (pyproject's [tool.mutmut]), runs the tests that reach each mutant, then this prints the score:
# mutants killed (or timed out) out of all mutants, those that no test reaches counted as
# survivors. It fails under MUTATION_FAIL_UNDER percent (default 80).
#
# The integration tests in the selection run on real PostgreSQL: each process mutmut starts gets
# a database of its own (tests/mutation_plugin.py), and this script drops any that a killed
# process left behind. MUTATION_CHILDREN mutants (default 2) are tested side by side. mutmut keeps
# its work in mutants/ and a second run retests only what changed; `rm -rf mutants` starts afresh.
# Extra arguments go to `mutmut run` (e.g. 'domain.idempotency*' for one module).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export HOPPER_MUTATION_RUN=$$
PGHOST=127.0.0.1

drop_leftovers() {
  psql -h $PGHOST -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'hopper\_mut\_${HOPPER_MUTATION_RUN}\_%'" |
    while read -r name; do dropdb -h $PGHOST -U postgres --force --if-exists "$name"; done
}
trap drop_leftovers EXIT

started=$SECONDS
$BIN/mutmut run --max-children "${MUTATION_CHILDREN:-2}" "$@"
status=$?
echo
mkdir -p var && $BIN/mutmut results --all true >var/mutation-results.txt 2>&1 || status=1
$BIN/python - "${MUTATION_FAIL_UNDER:-80}" "$((SECONDS - started))" <<'PY' || status=${status/#0/1}
import collections
import sys

fail_under, seconds = float(sys.argv[1]), int(sys.argv[2])
counts = collections.Counter()
survivors = []
for line in open("var/mutation-results.txt"):
    name, _, verdict = line.strip().rpartition(": ")
    if name:
        counts[verdict] += 1
        if verdict in ("survived", "no tests"):
            survivors.append(f"{name}: {verdict}")
total = sum(counts.values())
detected = counts["killed"] + counts["timeout"]
score = 100 * detected / total if total else 0.0
print("\n".join(survivors))
print(", ".join(f"{n} {verdict}" for verdict, n in counts.most_common()))
print(f"mutation score: {score:.1f}% ({detected} of {total} mutants killed) in {seconds}s")
print("see one with: .venv/bin/mutmut show NAME; all of them in var/mutation-results.txt")
sys.exit(0 if score >= fail_under else 1)
PY
exit "$status"
