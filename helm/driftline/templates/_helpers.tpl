{{/* Names and labels. */}}
{{- define "driftline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "driftline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "driftline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "driftline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftline
{{- end -}}

{{- define "driftline.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "driftline.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-config" (include "driftline.fullname" .)) -}}
{{- end -}}

{{/*
Settings the chart decides per component (never from values) and settings that are secret (from
`secretConfig` or `existingSecret`, never rendered as plain env values).
*/}}
{{- define "driftline.reservedFields" -}}
replica_index replica_count
{{- end -}}
{{- define "driftline.secretFields" -}}
api_keys clickhouse_url judge_api_key metrics_token
{{- end -}}

{{/*
The effective `config` of one component: `config` with `<component>.config` over it.
Args: dict "root" $ "component" ("collector" | "scorer" | "api" | "migrate"). Returns YAML.
*/}}
{{- define "driftline.config" -}}
{{- $root := .root -}}
{{- $cfg := deepCopy ($root.Values.config | default dict) -}}
{{- $part := get $root.Values .component -}}
{{- if and (kindIs "map" $part) (kindIs "map" $part.config) -}}
{{- $cfg = mergeOverwrite $cfg (deepCopy $part.config) -}}
{{- end -}}
{{- range $k := splitList " " (printf "%s %s" (include "driftline.reservedFields" $root) (include "driftline.secretFields" $root)) -}}
{{- if hasKey $cfg $k -}}
{{- fail (printf "config.%s (or %s.config.%s) cannot be set here: the chart sets DRIFTLINE_%s itself (secrets go under secretConfig or existingSecret; see the chart README)" $k $.component $k (upper $k)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
One settings value as the string a DRIFTLINE_* variable holds: lists and mappings as JSON (the
config loader reads JSON for those), whole numbers without an exponent (Helm reads every number
in values as a float, and 1073741824 would otherwise print as 1.073741824e+09).
*/}}
{{- define "driftline.envValue" -}}
{{- if or (kindIs "map" .) (kindIs "slice" .) -}}
{{- toJson . -}}
{{- else if kindIs "invalid" . -}}
{{- else if and (kindIs "float64" .) (eq (floor .) .) (lt (. | float64) 1e15) (gt (. | float64) -1e15) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/*
The container env of a Driftline pod: every `config` key as DRIFTLINE_<KEY>, then the secret
settings by reference. Args: dict "root" $ "component" name "extra" (list of env entries), and
optionally "secretName" and "secretFields" (default: the chart's Secret, every secret setting).
*/}}
{{- define "driftline.env" -}}
{{- $root := .root -}}
{{- $cfg := include "driftline.config" . | fromYaml -}}
{{- range $k := keys $cfg | sortAlpha }}
- name: DRIFTLINE_{{ upper $k }}
  value: {{ include "driftline.envValue" (get $cfg $k) | quote }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- $secret := .secretName | default (include "driftline.secretName" $root) }}
{{- range $k := .secretFields | default (splitList " " (include "driftline.secretFields" $root)) }}
- name: DRIFTLINE_{{ upper $k }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: DRIFTLINE_{{ upper $k }}
      {{- /* api_keys and clickhouse_url are required: a missing key stops the pod with a clear event. */}}
      optional: {{ eq $k "judge_api_key" }}
{{- end }}
{{- end -}}

{{/* The HTTP port of a component's merged config (the container serves OTLP/HTTP, API, probes, /metrics on it). */}}
{{- define "driftline.httpPort" -}}
{{- $cfg := include "driftline.config" . | fromYaml -}}
{{- include "driftline.envValue" (get $cfg "http_port" | default 4318) -}}
{{- end -}}

{{/* The /metrics listener's port (Prometheus scrapes it, with the metrics token). */}}
{{- define "driftline.metricsPort" -}}
{{- $cfg := include "driftline.config" . | fromYaml -}}
{{- include "driftline.envValue" (get $cfg "metrics_port" | default 9464) -}}
{{- end -}}

{{- define "driftline.grpcPort" -}}
{{- $cfg := include "driftline.config" . | fromYaml -}}
{{- include "driftline.envValue" (get $cfg "grpc_port" | default 4317) -}}
{{- end -}}

{{- define "driftline.dataDir" -}}
{{- $cfg := include "driftline.config" . | fromYaml -}}
{{- get $cfg "data_dir" | default "/var/lib/driftline" -}}
{{- end -}}

{{/* Pod-level settings both workloads share. */}}
{{- define "driftline.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
# Driftline needs no Kubernetes API access.
automountServiceAccountToken: false
# Service links would inject variables such as DRIFTLINE_COLLECTOR_PORT into the pods, and
# Driftline rejects any DRIFTLINE_* variable that is not one of its settings.
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* Probes: /healthz says the process serves; /readyz says the store takes writes. */}}
{{- define "driftline.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  {{- toYaml .Values.probes.startup | nindent 2 }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- end -}}
