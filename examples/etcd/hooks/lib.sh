# Shared by the hooks. sealant runs each hook with the working directory set to the image's
# rootfs on the host and the SEALANT_* environment described in the README.
set -eu
ROOTFS="$SEALANT_ROOTFS"
DATA="$SEALANT_DATA_ROOT/etcd"
RUN="$SEALANT_DATA_ROOT/run"
PIDFILE="$RUN/etcd.pid"
ETCDCTL="$ROOTFS/bin/etcdctl"
export ETCDCTL_API=3

is_master() { case ",$SEALANT_ROLES," in *,master,*) return 0 ;; *) return 1 ;; esac; }
member_name() { echo "etcd-$(echo "$1" | tr '.:' '--')"; }
peer_url() { echo "http://$1:2380"; }
client_url() { echo "http://$1:2379"; }

# name=peer,name=peer,... for a list of IPs
initial_cluster() {
  out=""
  for ip in $1; do out="$out${out:+,}$(member_name "$ip")=$(peer_url "$ip")"; done
  echo "$out"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2> /dev/null; }

# start_etcd STATE INITIAL_CLUSTER
start_etcd() {
  running && return 0
  mkdir -p "$DATA" "$RUN"
  chmod 700 "$DATA"
  set -a; . "$ROOTFS/etc/etcd.env"; set +a
  ip="$SEALANT_HOST_IP"
  # Fully detached, or the ssh command that started it would never return.
  setsid -f sh -c 'echo $$ > "$0"; exec "$@"' "$PIDFILE" "$ROOTFS/bin/etcd" \
    --name "$(member_name "$ip")" --data-dir "$DATA" \
    --listen-client-urls "$(client_url "$ip")" --advertise-client-urls "$(client_url "$ip")" \
    --listen-peer-urls "$(peer_url "$ip")" --initial-advertise-peer-urls "$(peer_url "$ip")" \
    --initial-cluster "$2" --initial-cluster-state "$1" --initial-cluster-token "$SEALANT_CLUSTER" \
    > "$RUN/etcd.log" 2>&1 < /dev/null
  for _ in $(seq 1 50); do [ -s "$PIDFILE" ] && return 0; sleep 0.1; done
  echo "etcd did not start; log:" >&2; tail -20 "$RUN/etcd.log" >&2; return 1
}

# stop_etcd [KILL]: SIGTERM and wait (a removed member may already be exiting by itself);
# reset passes KILL since the data goes anyway and a member without quorum is slow to stop.
stop_etcd() {
  running || { rm -f "$PIDFILE"; return 0; }
  pid="$(cat "$PIDFILE")"
  kill -s "${1:-TERM}" "$pid" 2> /dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || { rm -f "$PIDFILE"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2> /dev/null || true
  rm -f "$PIDFILE"
}

# Retries: right after a membership change etcd answers "unhealthy cluster" for a few seconds.
wait_healthy() {
  for i in $(seq 1 60); do
    if "$ETCDCTL" --endpoints "$(client_url "$1")" --command-timeout=2s endpoint health > /dev/null 2>&1; then return 0; fi
    sleep "0.$((i < 10 ? 2 : 5))"
  done
  echo "etcd at $1 is not healthy after 30 s; log:" >&2; tail -20 "$RUN/etcd.log" >&2 || true
  return 1
}

# retry CMD...: membership changes are refused with "unhealthy cluster" for a few seconds
# after the previous one; back off and try again for up to ~30 s.
retry() {
  for i in $(seq 1 40); do
    if out="$("$@" 2>&1)"; then printf '%s\n' "$out"; return 0; fi
    case "$out" in *"unhealthy cluster"*|*"context deadline exceeded"*|*"Unavailable"*) ;; *) printf '%s\n' "$out" >&2; return 1 ;; esac
    sleep "0.$((i < 10 ? 3 : 9))"
  done
  printf '%s\n' "$out" >&2; return 1
}

# Any existing member other than this host answers for the cluster.
other_endpoint() {
  for ip in $SEALANT_MASTERS; do
    [ "$ip" = "$SEALANT_HOST_IP" ] && continue
    case " ${SEALANT_ADDED:-} " in *" $ip "*) continue ;; esac
    echo "$(client_url "$ip")"; return 0
  done
  return 1
}
