{{/* The chart name, or nameOverride. */}}
{{- define "arc-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A name of at most 63 characters (a DNS label): the name itself when it fits, else its first 54
characters, a dash and 8 hex digits of its SHA-256, so that two long names that share a beginning
stay apart. Every object name built from the release name goes through it.
*/}}
{{- define "arc-operator.fit" -}}
{{- if le (len .) 63 }}
{{- . }}
{{- else }}
{{- printf "%s-%s" (trunc 54 . | trimSuffix "-") (sha256sum . | trunc 8) }}
{{- end }}
{{- end }}

{{/*
The full name of the objects: fullnameOverride, else <release>-<name> (or the release name when it
already contains the name); fitted to 63 characters.
*/}}
{{- define "arc-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- include "arc-operator.fit" .Values.fullnameOverride }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- include "arc-operator.fit" .Release.Name }}
{{- else }}
{{- include "arc-operator.fit" (printf "%s-%s" .Release.Name $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The full name with a suffix ("metrics", ...), fitted to 63 characters. */}}
{{- define "arc-operator.suffixed" -}}
{{- $ctx := index . 0 }}
{{- include "arc-operator.fit" (printf "%s-%s" (include "arc-operator.fullname" $ctx) (index . 1)) }}
{{- end }}

{{/*
The name of a cluster-scoped object: <release namespace>-<full name>[-suffix], fitted to 63
characters. Two releases of the same name in two namespaces must not share (and fight over) one.
*/}}
{{- define "arc-operator.clusterName" -}}
{{- $ctx := index . 0 }}
{{- $base := printf "%s-%s" $ctx.Release.Namespace (include "arc-operator.fullname" $ctx) }}
{{- if gt (len .) 1 }}
{{- include "arc-operator.fit" (printf "%s-%s" $base (index . 1)) }}
{{- else }}
{{- include "arc-operator.fit" $base }}
{{- end }}
{{- end }}

{{/* The metrics Service: also the `job` label Prometheus gives the operator's series. */}}
{{- define "arc-operator.metricsService" -}}
{{- include "arc-operator.suffixed" (list . "metrics") }}
{{- end }}

{{/* The PromQL selector of this release's operator series (the ServiceMonitor's scrape). */}}
{{- define "arc-operator.operatorSelector" -}}
namespace="{{ .Release.Namespace }}",job="{{ include "arc-operator.metricsService" . }}"
{{- end }}

{{/* chart label value: <name>-<version>. */}}
{{- define "arc-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "arc-operator.labels" -}}
helm.sh/chart: {{ include "arc-operator.chart" . }}
{{ include "arc-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: arc-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels: stable across upgrades (no chart version). */}}
{{- define "arc-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arc-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "arc-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "arc-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest or repository:tag (tag defaults to appVersion). */}}
{{- define "arc-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs in each namespace it watches: exactly the API calls operator/src
makes (docs/operator.md "RBAC"). One definition for the ClusterRole and the per-namespace Roles.
*/}}
{{/* The ClusterRole each ArcDeployment's sidecar is bound to (SIDECAR_CLUSTER_ROLE of the operator). */}}
{{- define "arc-operator.sidecarClusterRole" -}}
{{- include "arc-operator.clusterName" (list . "sidecar") -}}
{{- end }}

{{/*
Values that cannot work, refused with a message (values.schema.json cannot compare two values).
The operator refuses the same lease timings at boot (operator/src/config.ts, exit 78).
*/}}
{{- define "arc-operator.validate" -}}
{{- $le := .Values.leaderElection }}
{{- if and (not $le.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "leaderElection.enabled=false with replicaCount=%d: every replica would act at once and they would fight over the same objects. Set replicaCount: 1, or keep leader election on." (int .Values.replicaCount)) }}
{{- end }}
{{- if $le.enabled }}
{{- if ge (float64 $le.renewDeadlineSeconds) (float64 $le.leaseDurationSeconds) }}
{{- fail (printf "leaderElection.renewDeadlineSeconds (%v) must be lower than leaderElection.leaseDurationSeconds (%v): a leader must give up before another instance may take over (the operator would exit 78)." $le.renewDeadlineSeconds $le.leaseDurationSeconds) }}
{{- end }}
{{- if ge (float64 $le.retryPeriodSeconds) (float64 $le.renewDeadlineSeconds) }}
{{- fail (printf "leaderElection.retryPeriodSeconds (%v) must be lower than leaderElection.renewDeadlineSeconds (%v): a leader must get more than one renewal attempt (the operator would exit 78)." $le.retryPeriodSeconds $le.renewDeadlineSeconds) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "arc-operator.watchRules" -}}
# ArcDeployments: informers (list, watch); status written by server-side apply.
- apiGroups: [arcops.dev]
  resources: [arcdeployments]
  verbs: [list, watch]
- apiGroups: [arcops.dev]
  resources: [arcdeployments/status]
  verbs: [patch]
# Owner references with blockOwnerDeletion need update on the owner's finalizers wherever the
# OwnerReferencesPermissionEnforcement admission plugin is on.
- apiGroups: [arcops.dev]
  resources: [arcdeployments/finalizers]
  verbs: [update]
# Owned objects: informers (list, watch), a get before creating, server-side apply (patch; create
# when the object is new; a rollback is an apply too) and a JSON patch to put back a list another
# writer changed.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch]
# The sidecars' grant: each ArcDeployment's RoleBinding binds its ServiceAccount to the sidecar
# ClusterRole in its own namespace. `bind` on that one ClusterRole lets the operator make such
# bindings without holding what they grant (and spares the API server the check that it does).
# A roleRef cannot change: a binding from before (to a Role per ArcDeployment) is deleted and made
# again, and that Role (get, delete) goes.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  resourceNames: [{{ include "arc-operator.sidecarClusterRole" . | quote }}]
  verbs: [get, bind]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [get, delete]
# Pods: informer (list, watch).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# Remediation evicts through the Eviction API (the PodDisruptionBudget is honoured); it never
# deletes a pod.
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
# The API token Secret an ArcDeployment names: read by name only (no list, no watch).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Events on ArcDeployments (repeats bump the count with a merge patch).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
