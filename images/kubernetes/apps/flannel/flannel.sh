#!/bin/sh
# The cluster's pod network: flanneld with the host-gw backend (a route to every other node's pod
# range through that node's address: nodes share one L2 network) and the standard bridge +
# host-local CNI plugins. The flannel CNI plugin (github.com/flannel-io/cni-plugin) cannot be
# built here, so a small sidecar writes the bridge configuration it would have produced from
# flanneld's /run/flannel/subnet.env. Run on the first master right after `kubeadm init`, with the
# admin kubeconfig; the pod range is the cluster's own (kubeadm's ClusterConfiguration).
set -eu
. etc/kube-images.env
subnet=$(kubectl -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' | awk '$1 == "podSubnet:" { print $2; exit }')
if [ -z "$subnet" ]; then echo "flannel: the cluster has no networking.podSubnet (kubeadm-config ConfigMap)" >&2; exit 1; fi
# flanneld reaches the API by the cluster's stable endpoint (the node's own name for it: the
# first master or the workers' VIP), not the kubernetes Service: that needs kube-proxy's rules on
# the node first, and a flanneld that starts before them times out and restarts (~30 s per node).
endpoint=$(kubectl -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' | awk '$1 == "controlPlaneEndpoint:" { print $2; exit }')
if [ -z "$endpoint" ]; then echo "flannel: the cluster has no controlPlaneEndpoint (kubeadm-config ConfigMap)" >&2; exit 1; fi
kubectl apply -f - << YAML
apiVersion: v1
kind: Namespace
metadata:
  name: kube-flannel
  labels: {pod-security.kubernetes.io/enforce: privileged}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: flannel, namespace: kube-flannel}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: flannel}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get]
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [nodes/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: flannel}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flannel}
subjects:
- {kind: ServiceAccount, name: flannel, namespace: kube-flannel}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kube-flannel-cfg, namespace: kube-flannel, labels: {app: flannel}}
data:
  net-conf.json: |
    {"Network": "${subnet}", "Backend": {"Type": "host-gw"}}
  write-cni-config.sh: |
    # Writes the bridge CNI configuration for this node's pod range once flanneld has leased it,
    # and again whenever the lease changes; atomically (temp file + rename).
    set -eu
    conf=/etc/cni/net.d/10-flannel.conflist
    last=""
    while true; do
      if [ -f /run/flannel/subnet.env ]; then
        . /run/flannel/subnet.env
        # FLANNEL_SUBNET is this node's gateway address with the range's length (100.64.3.1/24);
        # host-local wants the range itself (100.64.3.0/24).
        eval "\$(ipcalc -n "\$FLANNEL_SUBNET")"
        range="\$NETWORK/\${FLANNEL_SUBNET#*/}"
        want="\$FLANNEL_NETWORK \$range \$FLANNEL_MTU"
        if [ "\$want" != "\$last" ] || [ ! -f "\$conf" ]; then
          cat > "\$conf.tmp" << JSON
    {
      "cniVersion": "0.4.0",
      "name": "cbr0",
      "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true, "ipMasq": false,
         "hairpinMode": true, "mtu": \$FLANNEL_MTU,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "\$range", "gateway": "\${FLANNEL_SUBNET%/*}"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": true}}
      ]
    }
    JSON
          mv -f "\$conf.tmp" "\$conf"
          echo "wrote \$conf for \$range"
          last="\$want"
        fi
      fi
      sleep 2
    done
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds, namespace: kube-flannel, labels: {app: flannel}}
spec:
  selector: {matchLabels: {app: flannel}}
  template:
    metadata: {labels: {app: flannel}}
    spec:
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: flannel
      tolerations: [{operator: Exists}]
      containers:
      - name: kube-flannel
        image: ${FLANNEL_IMAGE}
        command: [/opt/bin/flanneld]
        args: [--ip-masq=false, --kube-subnet-mgr]
        resources: {requests: {cpu: 20m, memory: 32Mi}}
        securityContext: {privileged: false, capabilities: {add: [NET_ADMIN, NET_RAW]}}
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: EVENT_QUEUE_DEPTH, value: "5000"}
        - {name: KUBERNETES_SERVICE_HOST, value: "${endpoint%:*}"}
        - {name: KUBERNETES_SERVICE_PORT, value: "${endpoint##*:}"}
        volumeMounts:
        - {name: run, mountPath: /run/flannel}
        - {name: flannel-cfg, mountPath: /etc/kube-flannel/}
        - {name: xtables-lock, mountPath: /run/xtables.lock}
      - name: cni-config
        image: ${FLANNEL_IMAGE}
        command: [/bin/sh, /etc/kube-flannel/write-cni-config.sh]
        resources: {requests: {cpu: 5m, memory: 8Mi}}
        volumeMounts:
        - {name: run, mountPath: /run/flannel}
        - {name: cni, mountPath: /etc/cni/net.d}
        - {name: flannel-cfg, mountPath: /etc/kube-flannel/}
      volumes:
      - {name: run, hostPath: {path: /run/flannel, type: DirectoryOrCreate}}
      - {name: cni, hostPath: {path: /etc/cni/net.d, type: DirectoryOrCreate}}
      - {name: flannel-cfg, configMap: {name: kube-flannel-cfg}}
      - {name: xtables-lock, hostPath: {path: /run/xtables.lock, type: FileOrCreate}}
YAML
