#!/usr/bin/env bash
# monitoring.sh: issue 17's monitoring and logging addons on the lab's
# cluster (after `make demo`; on a fresh lab, step 1's up makes the
# cluster with them): turned on in the lab's inventory (Grafana
# and kube-state-metrics off: their images cannot be built here; the unit
# tests check their manifests with a server-side dry run), with a bundle
# holding their images, then:
#  1. up, and every pod of kube-ops Ready: the time and each VM's RSS;
#  2. Prometheus, Alertmanager and VictoriaLogs answer HTTP 200 through
#     `kubectl proxy`, as the README's Access section says;
#  3. Prometheus's targets up: 3 node-exporters, 3 kubelets, every API
#     server and etcd member of the inventory; Watchdog active in Alertmanager; a
#     PrometheusRule made here loaded by Prometheus;
#  4. every dashboard query and every rule's selectors return data
#     (go test -run TestLabQueries ./test/lab);
#  5. a pod's unique line found in VictoriaLogs within 60 s, with its
#     namespace and pod;
#  6. a second up changes nothing (plan exits 0);
#  7. logging disabled: its release gone, none of its pods left;
#  8. the inventory as it was, and up: the lab as `make demo` left it.
#
#   test/lab/scenarios/monitoring.sh     (make lab-monitoring)
#
# Env: BIN (bin/metalk8s), LAB_DIR (.lab), LAB_BUNDLE (.cache/bundle/<v>;
# this scenario's bundle is LAB_BUNDLE-monitoring). Prints each check as
# "ok ..." or "FAIL ..."; exits 1 if any failed.
SCENARIO=monitoring
. "$(dirname "$0")/lib.sh"

VARS=$LAB_DIR/inventory/group_vars/all.yml
MB=$LAB_BUNDLE-monitoring
MFLAGS=(--known-hosts "$KNOWN" --bundle "$MB")
PORT=8001 # the README's Access URLs
API=http://127.0.0.1:$PORT/api/v1/namespaces/kube-ops/services
PROM=$API/prometheus:web/proxy
AM=$API/alertmanager:web/proxy
VL=$API/victoria-logs:http/proxy
proxy=
restore() {
	[[ -z $proxy ]] || kill "$proxy" 2>/dev/null
	$KUBECTL -n kube-ops delete ingress scenario --ignore-not-found >/dev/null 2>&1
	[[ ! -f $OUT/all.yml.orig ]] || cp "$OUT/all.yml.orig" "$VARS"
}
trap restore EXIT
# stop: the rest depends on the command that just failed
stop() {
	echo "monitoring: stopped (the rest depends on that command; the lab's inventory is as it was, the addons still on: make lab-monitoring again, or up)"
	exit 1
}
# vars KEY VALUE: set a variable of the lab's group_vars/all.yml
vars() {
	if grep -q "^$1:" "$VARS"; then sed -i "s|^$1:.*|$1: $2|" "$VARS"; else echo "$1: $2" >>"$VARS"; fi
}
http200() { test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$1")" = 200; }
# up_count JOB [BY]: how many distinct BY (default instance) of JOB are up
up_count() {
	curl -sf --max-time 60 "$PROM/api/v1/query" --data-urlencode "query=count(count by (${2:-instance}) (up{job=\"$1\"} == 1))" |
		jq -r '.data.result[0].value[1] // 0'
}
targets_up() { test "$(up_count "$1" "$3")" = "$2"; } # targets_up JOB N [BY]
# rss: each lab VM's resident memory on this machine (QEMU's RSS), and used
# memory inside it
rss() {
	local i pid
	for i in 1 2 3; do
		pid=$(cat "$LAB_DIR/run/node$i/qemu.pid" 2>/dev/null)
		printf '   node%s: QEMU RSS %s MiB; inside: %s\n' "$i" "$(($(ps -o rss= -p "${pid:-0}" 2>/dev/null || echo 0) / 1024))" \
			"$(on "node$i" "free -m | awk '/^Mem:/ {print \$3 \" MiB used of \" \$2}'")"
	done
}

step "preconditions"
if [[ -n $(nodes 2>/dev/null) ]]; then
	check "3 nodes Ready" until_nodes "node1=True node2=True node3=True " 10
else
	echo "   no cluster yet (a fresh lab): step 1's up makes it, with monitoring and logging from the start"
fi
cp "$VARS" "$OUT/all.yml.orig"
echo "   before:"
rss

step "1. monitoring and logging on (Grafana and kube-state-metrics off), their bundle"
vars metalk8s_monitoring_enabled true
vars metalk8s_logging_enabled true
# Scrapes every 2 minutes, with 110 s to answer: node1's apiserver
# renders its /metrics (31,000 samples) in 22-51 s on the emulated CPU,
# over Prometheus's 10 s (down in the tries with 10 s) and often over
# 50 s (a try scraping every minute with 50 s: 6 of 18 scrapes done), and
# each scrape, done or not, is paid for there. The panels' and rules'
# windows are 5 minutes: two or three samples.
vars metalk8s_monitoring_values "{grafana: {enabled: false}, kubeStateMetrics: {enabled: false}, prometheus: {scrapeInterval: 2m, scrapeTimeout: 110s}}"
t0=$SECONDS
LAB_BUNDLE=$(readlink -f "$MB") LAB_INVENTORY=$(readlink -f "$INV") test/lab/bundle.sh "$(readlink -f "$BIN")" >"$OUT/bundle.log" 2>&1
check "bundle with the monitoring and logging images ($((SECONDS - t0)) s)" test $? = 0 || stop
t0=$SECONDS
mk8s up up "$INV" "${MFLAGS[@]}" --yes -v
check "up exit 0" test $? = 0 || stop
ready() { $KUBECTL -n kube-ops wait pod --all --for condition=Ready --timeout 10s >/dev/null; }
check "every pod of kube-ops Ready" until_ok 20 ready
echo "   $((SECONDS - t0)) s from up to every pod of kube-ops Ready"
$KUBECTL -n kube-ops get pods -o wide | sed 's/^/   /'
echo "   after:"
rss

step "2. access through kubectl proxy"
$KUBECTL proxy --port $PORT >"$OUT/proxy.log" 2>&1 &
proxy=$!
sleep 3
check "Prometheus /-/ready: 200" until_ok 5 http200 "$PROM/-/ready"
check "Alertmanager /-/ready: 200" until_ok 5 http200 "$AM/-/ready"
check "Alertmanager's UI: 200" http200 "$AM/"
check "VictoriaLogs' UI (/select/vmui/): 200" until_ok 5 http200 "$VL/select/vmui/"

step "3. targets, Watchdog, an operator's PrometheusRule"
for want in node-exporter:3 kubelet:3:node "etcd:$(hosts_of etcd | wc -l)" "apiserver:$(hosts_of kube-master | wc -l)"; do
	IFS=: read -r job n by <<<"$want"
	check "$n $job targets up" until_ok 10 targets_up "$job" "$n" "$by"
done
curl -s "$PROM/api/v1/targets?state=active" | jq -r '.data.activeTargets[] | "   \(.labels.job) \(.labels.instance) \(.health) \(.lastError)"' | sort
watchdog() { test "$(curl -sf "$AM/api/v2/alerts" | jq '[.[] | select(.labels.alertname == "Watchdog" and .status.state == "active")] | length')" -ge 1; }
check "Watchdog active in Alertmanager" until_ok 5 watchdog
$KUBECTL apply -f - >/dev/null <<-EOF
	apiVersion: monitoring.coreos.com/v1
	kind: PrometheusRule
	metadata: {name: scenario-rule, namespace: default}
	spec:
	  groups:
	    - name: scenario
	      rules:
	        - record: scenario:up:count
	          expr: count(up)
EOF
rule() { curl -sf "$PROM/api/v1/rules" | jq -e '.data.groups[].rules[] | select(.name == "scenario:up:count")' >/dev/null; }
check "the PrometheusRule default/scenario-rule loaded" until_ok 5 rule
$KUBECTL -n default delete prometheusrule scenario-rule >/dev/null

step "4. every dashboard query and rule selector returns data"
# Traefik has request series only once it has served some: a few through
# an Ingress to Prometheus, then two scrapes (2 minutes apart) for the
# panels' rates
$KUBECTL apply -f - >/dev/null <<-EOF
	apiVersion: networking.k8s.io/v1
	kind: Ingress
	metadata: {name: scenario, namespace: kube-ops}
	spec:
	  rules:
	    - host: scenario.lab
	      http:
	        paths:
	          - {path: /, pathType: Prefix, backend: {service: {name: prometheus, port: {name: web}}}}
EOF
# routed: node2 asks Traefik on its own address (bash's /dev/tcp: the lab's
# VMs have no curl) and gets Prometheus's 200
routed() {
	on node2 "exec 3<>/dev/tcp/10.10.0.12/80 && printf 'GET /-/ready HTTP/1.0\\r\\nHost: scenario.lab\\r\\n\\r\\n' >&3 && timeout 30 head -1 <&3" | grep -q ' 200 '
}
check "a request through Traefik's Ingress" until_ok 5 routed
for ((i = 0; i < 18; i++)); do routed; sleep 15; done # 4.5 minutes
METALK8S_LAB_PROMETHEUS=$PROM go test -count=1 -v -run TestLabQueries ./test/lab >"$OUT/queries.log" 2>&1
check "go test -run TestLabQueries ./test/lab ($OUT/queries.log)" test $? = 0
grep -E '^\s+(queries_test|--- )' "$OUT/queries.log" | head -40 | sed 's/^/   /'
$KUBECTL -n kube-ops delete ingress scenario >/dev/null

step "5. a pod's line in VictoriaLogs"
line="metalk8s-scenario-$(date +%s)-$RANDOM"
img=$(jq -r '.images[].name | select(contains("/agnhost:"))' "$MB/manifest.json" | head -1)
$KUBECTL -n default run logline --image "$img" --image-pull-policy Never --restart Never --command -- /agnhost entrypoint-tester "$line" >/dev/null
$KUBECTL -n default wait pod logline --for jsonpath='{.status.phase}'=Succeeded --timeout 5m >/dev/null
t0=$SECONDS
found() { curl -sf "$VL/select/logsql/query" --data-urlencode "query=\"$line\"" >"$OUT/logline.json" && test -s "$OUT/logline.json"; }
for ((i = 0; i < 12; i++)); do found && break; sleep 5; done
check "the line found within 60 s ($((SECONDS - t0)) s after the pod ended)" test -s "$OUT/logline.json"
check "with its namespace and pod" jq -e 'select(."kubernetes.pod_namespace" == "default" and ."kubernetes.pod_name" == "logline")' "$OUT/logline.json"
$KUBECTL -n default delete pod logline --wait=false >/dev/null

step "6. a second up changes nothing"
mk8s plan-again plan "$INV" "${MFLAGS[@]}"
check "plan: exit 0 (no changes)" test $? = 0

step "7. logging disabled"
vars metalk8s_logging_enabled false
mk8s up-nologs up "$INV" "${MFLAGS[@]}" --yes -v
check "up exit 0" test $? = 0
check "no logging release" test -z "$($KUBECTL -n kube-ops get secret -l owner=helm,name=logging -o name)"
gone() { test -z "$($KUBECTL -n kube-ops get pods -l app.kubernetes.io/instance=logging -o name)"; }
check "no logging pod left" until_ok 5 gone

step "8. the lab's inventory as it was, and up"
cp "$OUT/all.yml.orig" "$VARS"
mk8s up-back up "$INV" "${FLAGS[@]}" --yes -v
check "up exit 0" test $? = 0
check "no monitoring release" test -z "$($KUBECTL -n kube-ops get secret -l owner=helm,name=monitoring -o name)"

[[ $failed == 0 ]] && echo "monitoring: every check passed" || echo "monitoring: some checks failed"
exit $failed
