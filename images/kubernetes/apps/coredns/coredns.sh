#!/bin/sh
# The cluster's DNS: CoreDNS, deployed by the image rather than by kubeadm. kubeadm only knows
# CoreDNS up to its own default (v1.11.3, which the Go module proxy does not serve); with a newer
# CoreDNS running, `kubeadm upgrade apply` fails migrating its Corefile. kubeadm skips its DNS
# phases when kube-system has no ConfigMap named "coredns" (init: skipPhases addon/coredns in
# etc/kubeadm.yml), so this Corefile lives in "sealant-coredns". Same objects as kubeadm's
# otherwise: the kube-dns Service on the kubelet's clusterDNS address. Run on the first master
# right after `kubeadm init` with the admin kubeconfig; idempotent.
set -eu
. etc/kube-images.env
kubelet_config=$(kubectl -n kube-system get configmap kubelet-config -o jsonpath='{.data.kubelet}')
dns_ip=$(printf '%s\n' "$kubelet_config" | awk '/^clusterDNS:/ { getline; print $2; exit }')
domain=$(printf '%s\n' "$kubelet_config" | awk '$1 == "clusterDomain:" { print $2; exit }')
if [ -z "$dns_ip" ] || [ -z "$domain" ]; then echo "coredns: the kubelet-config ConfigMap names no clusterDNS/clusterDomain" >&2; exit 1; fi
kubectl apply -f - << YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: sealant-coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health {
           lameduck 5s
        }
        ready
        kubernetes ${domain} in-addr.arpa ip6.arpa {
           pods insecure
           fallthrough in-addr.arpa ip6.arpa
           ttl 30
        }
        prometheus :9153
        forward . /etc/resolv.conf {
           max_concurrent 1000
        }
        cache 30
        loop
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 2
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      priorityClassName: system-cluster-critical
      serviceAccountName: coredns
      tolerations:
      - {key: CriticalAddonsOnly, operator: Exists}
      - {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {k8s-app: kube-dns}}}
      containers:
      - name: coredns
        image: ${COREDNS_IMAGE}
        args: [-conf, /etc/coredns/Corefile]
        resources: {limits: {memory: 170Mi}, requests: {cpu: 100m, memory: 70Mi}}
        volumeMounts: [{name: config-volume, mountPath: /etc/coredns, readOnly: true}]
        ports:
        - {containerPort: 53, name: dns, protocol: UDP}
        - {containerPort: 53, name: dns-tcp, protocol: TCP}
        - {containerPort: 9153, name: metrics, protocol: TCP}
        livenessProbe: {httpGet: {path: /health, port: 8080}, initialDelaySeconds: 60, timeoutSeconds: 5, failureThreshold: 5}
        readinessProbe: {httpGet: {path: /ready, port: 8181}}
      dnsPolicy: Default
      volumes:
      - {name: config-volume, configMap: {name: sealant-coredns, items: [{key: Corefile, path: Corefile}]}}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: ${dns_ip}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
YAML
