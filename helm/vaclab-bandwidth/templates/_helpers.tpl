{{/*
Names, labels and the values both daemons share.

  vaclab-bandwidth.name / .fullname / .chart   the usual naming helpers
  vaclab-bandwidth.labels (dict "root" $ "component" C)          labels of every object
  vaclab-bandwidth.selectorLabels (dict "root" $ "component" C)  a Deployment's selector
  vaclab-bandwidth.egressAnnotation / .ingressAnnotation         seed value > preset
  vaclab-bandwidth.mbps (dict "seed" V "default" D)              seed capacity > default
  vaclab-bandwidth.checkReplicas (dict "root" $ "component" C "daemon" D)  fails on two
                                                                 writers without election
  vaclab-bandwidth.pluginFlags                                   kubectl bandwidth's flags
*/}}

{{- define "vaclab-bandwidth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vaclab-bandwidth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vaclab-bandwidth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of one daemon's objects: <fullname>-scheduler, <fullname>-accounting. */}}
{{- define "vaclab-bandwidth.componentName" -}}
{{- printf "%s-%s" (include "vaclab-bandwidth.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vaclab-bandwidth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vaclab-bandwidth.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "vaclab-bandwidth.labels" -}}
helm.sh/chart: {{ include "vaclab-bandwidth.chart" .root }}
{{ include "vaclab-bandwidth.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: vaclab-bandwidth
{{- end }}

{{- define "vaclab-bandwidth.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The annotation keys of the preset, overridden by the seed chart's manager.annotations. */}}
{{- define "vaclab-bandwidth.presetKeys" -}}
{{- $preset := .Values.annotations.preset }}
{{- if eq $preset "cni" }}
{{- dict "egress" "kubernetes.io/egress-bandwidth" "ingress" "kubernetes.io/ingress-bandwidth" | toJson }}
{{- else if eq $preset "kube-ovn" }}
{{- dict "egress" "ovn.kubernetes.io/egress_rate" "ingress" "ovn.kubernetes.io/ingress_rate" | toJson }}
{{- else if eq $preset "custom" }}
{{- dict "egress" .Values.annotations.egress "ingress" .Values.annotations.ingress | toJson }}
{{- else }}
{{- fail (printf "annotations.preset must be cni, kube-ovn or custom, not %q" $preset) }}
{{- end }}
{{- end }}

{{- define "vaclab-bandwidth.annotationKey" -}}
{{- $keys := include "vaclab-bandwidth.presetKeys" .root | fromJson }}
{{- $key := get .root.Values.manager.annotations .direction | default (get $keys .direction) }}
{{- if not $key }}
{{- fail (printf "annotations.%s is required with annotations.preset=custom" .direction) }}
{{- end }}
{{- $key }}
{{- end }}

{{- define "vaclab-bandwidth.egressAnnotation" -}}
{{- include "vaclab-bandwidth.annotationKey" (dict "root" . "direction" "egress") }}
{{- end }}

{{- define "vaclab-bandwidth.ingressAnnotation" -}}
{{- include "vaclab-bandwidth.annotationKey" (dict "root" . "direction" "ingress") }}
{{- end }}

{{/* A capacity in whole Mbps (values.schema.json checks the type): the seed chart's value
when set, 0 included, else the default. int64 keeps 1000000 from printing as 1e+06. */}}
{{- define "vaclab-bandwidth.mbps" -}}
{{- if kindIs "invalid" .seed }}
{{- int64 .default }}
{{- else }}
{{- int64 .seed }}
{{- end }}
{{- end }}

{{/* Flags both daemons take: logs, metrics and health addresses, leader election. */}}
{{- define "vaclab-bandwidth.commonArgs" -}}
- --log-level={{ .root.Values.logLevel }}
- --log-format={{ .root.Values.logFormat }}
- --metrics-bind-address=:{{ .root.Values.metrics.port }}
- --health-probe-bind-address=:{{ .root.Values.health.port }}
{{- if .root.Values.leaderElection.enabled }}
- --leader-elect
- --leader-elect-resource-name={{ .leaseName }}
- --leader-elect-resource-namespace={{ .root.Release.Namespace }}
{{- end }}
{{- end }}

{{/* DRA sharing flags both daemons take (include only when dra.driver is set). */}}
{{- define "vaclab-bandwidth.draArgs" -}}
- {{ printf "--dra-driver=%v" .driver | quote }}
- {{ printf "--dra-nic-device=%v" .nicDevice | quote }}
- {{ printf "--dra-vswitch-device=%v" .vswitchDevice | quote }}
- {{ printf "--dra-uplink-capacity=%v" .uplinkCapacity | quote }}
- {{ printf "--dra-downlink-capacity=%v" .downlinkCapacity | quote }}
{{- end }}

{{/* The reads of DRA sharing, kubeio.dra's two watch caches (only when dra.driver is set). */}}
{{- define "vaclab-bandwidth.draRules" -}}
- apiGroups: ["resource.k8s.io"]
  resources: ["resourceclaims", "resourceslices"]
  verbs: ["list", "watch"]
{{- end }}

{{/* The lease each daemon holds when leader election is on (also its Role's resourceNames). */}}
{{- define "vaclab-bandwidth.schedulerLease" -}}
{{- .Values.schedulerName }}
{{- end }}

{{- define "vaclab-bandwidth.accountingLease" -}}
{{- include "vaclab-bandwidth.componentName" (dict "root" . "component" "accounting") }}
{{- end }}

{{/* The pod template fields both Deployments share; .daemon is .Values.scheduler or .accounting. */}}
{{- define "vaclab-bandwidth.podScheduling" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .daemon.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .daemon.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .daemon.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .daemon.affinity }}
affinity:
  {{- toYaml .daemon.affinity | nindent 2 }}
{{- else }}
{{- /* Replicas prefer different nodes: a node lost takes the leader, not the standby too. */}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "vaclab-bandwidth.selectorLabels" . | nindent 14 }}
{{- end }}
{{- with .root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Ports, probes, env, security and the writable /tmp of both containers. */}}
{{- define "vaclab-bandwidth.containerCommon" -}}
image: {{ include "vaclab-bandwidth.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
env:
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  - name: PYTHONUNBUFFERED
    value: "1"
ports:
  - name: metrics
    containerPort: {{ .root.Values.metrics.port }}
    protocol: TCP
  - name: health
    containerPort: {{ .root.Values.health.port }}
    protocol: TCP
livenessProbe:
  httpGet:
    path: /healthz
    port: health
  initialDelaySeconds: 10
  periodSeconds: 20
readinessProbe:
  httpGet:
    path: /readyz
    port: health
  initialDelaySeconds: 3
  periodSeconds: 10
{{- with .daemon.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}

{{/* The Role and RoleBinding of one daemon's Lease in the release namespace. A create cannot
be limited to a name (RBAC sees no name before the object exists); get and update can. */}}
{{- define "vaclab-bandwidth.leaseRole" -}}
{{- $name := printf "%s-leader-election" (include "vaclab-bandwidth.componentName" .) | trunc 63 | trimSuffix "-" }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "vaclab-bandwidth.labels" . | nindent 4 }}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["create"]
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: [{{ .leaseName | quote }}]
    verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "vaclab-bandwidth.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "vaclab-bandwidth.componentName" . }}
    namespace: {{ .root.Release.Namespace }}
{{- end }}

{{/* Two replicas without leader election would both schedule (or both keep the books). */}}
{{- define "vaclab-bandwidth.checkReplicas" -}}
{{- if and (gt (int .daemon.replicas) 1) (not .root.Values.leaderElection.enabled) }}
{{- fail (printf "%s.replicas=%d needs leaderElection.enabled=true: without a Lease every replica would %s at once" .component (int .daemon.replicas) (ternary "schedule" "write the books" (eq .component "scheduler"))) }}
{{- end }}
{{- end }}

{{/* The flags kubectl bandwidth needs to see what this scheduler sees ("" when the
defaults match). */}}
{{- define "vaclab-bandwidth.pluginFlags" -}}
{{- $flags := list }}
{{- if ne .Values.schedulerName "vaclab-scheduler" }}
{{- $flags = append $flags (printf "--scheduler-name %s" .Values.schedulerName) }}
{{- end }}
{{- $egress := include "vaclab-bandwidth.egressAnnotation" . }}
{{- if ne $egress "kubernetes.io/egress-bandwidth" }}
{{- $flags = append $flags (printf "--egress-annotation %s" $egress) }}
{{- end }}
{{- $ingress := include "vaclab-bandwidth.ingressAnnotation" . }}
{{- if ne $ingress "kubernetes.io/ingress-bandwidth" }}
{{- $flags = append $flags (printf "--ingress-annotation %s" $ingress) }}
{{- end }}
{{- if ne .Values.annotations.linkLocal "bandwidth.vaclab.org/link-local" }}
{{- $flags = append $flags (printf "--link-local-annotation %s" .Values.annotations.linkLocal) }}
{{- end }}
{{- join " " $flags }}
{{- end }}
