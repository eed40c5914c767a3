#!/usr/bin/env bash
# reset.sh: issue 18's `metalk8s reset` on a running lab cluster (after
# `make demo`, or after remove-add.sh): without a terminal it refuses
# without --yes; with --yes it tears the cluster down on every host of the
# inventory, keeping each host's volumes with their data, the operator's
# own firewall chain, the CAs (artifacts/pki) and the journal set aside; a
# second reset has nothing to do. The lab is then no cluster: make lab-down.
#
#   test/lab/scenarios/reset.sh     (make lab-reset)
#
# Prints each check as "ok ..." or "FAIL ..."; exits 1 if any failed.
SCENARIO=reset
. "$(dirname "$0")/lib.sh"

ART=$LAB_DIR/inventory/artifacts
hosts=$(hosts_of all)
step "preconditions: $(echo $hosts)"
for n in $hosts; do mark "$n"; done

step "reset without --yes, no terminal: refused"
mk8s refused reset "$INV" --known-hosts "$KNOWN" </dev/null
rc=$?
check "reset without --yes: exit 2, got $rc" test "$rc" = 2
check "it asks for --yes" grep -q "give --yes" "$OUT/refused.log"
check "nothing changed: the nodes still there" test -n "$(nodes)"

step "reset --yes"
mk8s reset reset "$INV" --known-hosts "$KNOWN" --yes -v
check "reset exit 0" test $? = 0
grep -E ' (changed|failed)' "$OUT/reset.log" | sed 's/^/   /'
for n in $hosts; do host_reset "$n"; done
check "the CAs kept (artifacts/pki)" test -s "$ART/pki/kubernetes/ca.key" -a -s "$ART/pki/etcd/ca.key"
check "the journal set aside" compgen -G "$ART/journal.json.reset-*" >/dev/null

step "reset again: nothing to do"
mk8s reset-again reset "$INV" --known-hosts "$KNOWN" --yes -v
check "second reset exit 0" test $? = 0
changed=$(awk '$3 ~ /\// && $4 == "changed" {print $2 ":" $3}' "$OUT/reset-again.log") # step lines, not the legend
check "second reset changed nothing${changed:+: $(echo $changed)}" test -z "$changed"

for n in $hosts; do
	on "$n" "rm -f ${vol[$n]}/scenario.marker; iptables -D INPUT -j OPERATOR-KEEP; iptables -X OPERATOR-KEEP" || true
done
[[ $failed == 0 ]] && echo "reset: every check passed" || echo "reset: some checks failed"
exit $failed
