{{/* Chart name, truncated to the 63-character DNS label limit. */}}
{{- define "pypiserver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "pypiserver.fullname" -}}
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

{{- define "pypiserver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: only the server pods carry both of these. */}}
{{- define "pypiserver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pypiserver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pypiserver.labels" -}}
helm.sh/chart: {{ include "pypiserver.chart" . }}
{{ include "pypiserver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels for helm test resources. They deliberately omit app.kubernetes.io/name so
test pods never match the server selector (the persistence test deletes by it).
*/}}
{{- define "pypiserver.testLabels" -}}
helm.sh/chart: {{ include "pypiserver.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
{{- end }}

{{/*
Labels of the canary's objects and pods: like the test labels, without app.kubernetes.io/name, so that a canary pod
never matches the server selector (the Service would send it traffic, a restart would count it).
*/}}
{{- define "pypiserver.canaryLabels" -}}
helm.sh/chart: {{ include "pypiserver.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: canary
{{- end }}

{{/* Name of the Secret holding .htpasswd (and username/password). */}}
{{- define "pypiserver.authSecretName" -}}
{{- default (printf "%s-auth" (include "pypiserver.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* Name of the claim mounted at /data/packages (pvc and s3 types). */}}
{{- define "pypiserver.claimName" -}}
{{- if eq .Values.persistence.type "s3" }}
{{- printf "%s-s3" (include "pypiserver.fullname" .) }}
{{- else }}
{{- default (include "pypiserver.fullname" .) .Values.persistence.existingClaim }}
{{- end }}
{{- end }}

{{/* In-cluster base URL of the service. */}}
{{- define "pypiserver.url" -}}
{{- printf "http://%s.%s.svc:%v" (include "pypiserver.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{/* Reject combinations that cannot work. */}}
{{- define "pypiserver.validate" -}}
{{- $p := .Values.persistence }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) }}
{{- if or (not .Values.auth.username) (not .Values.auth.password) }}
{{- fail "auth.enabled needs auth.username and auth.password (or auth.existingSecret)" }}
{{- end }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if eq $p.type "emptyDir" }}
{{- fail "replicaCount > 1 needs shared storage: emptyDir gives every replica its own package set" }}
{{- end }}
{{- if and (eq $p.type "pvc") (ne $p.accessMode "ReadWriteMany") }}
{{- fail "replicaCount > 1 with persistence.type=pvc needs persistence.accessMode=ReadWriteMany" }}
{{- end }}
{{- end }}
{{- if and (eq $p.type "s3") (not $p.s3.bucketName) }}
{{- fail "persistence.type=s3 needs persistence.s3.bucketName" }}
{{- end }}
{{- end }}

{{/* pypiserver command-line arguments. */}}
{{- define "pypiserver.args" -}}
- run
- -p
- "8080"
{{- if .Values.auth.enabled }}
- -a
- {{ join "," .Values.auth.actions | quote }}
- -P
- /auth/.htpasswd
{{- else }}
- -a
- .
- -P
- .
{{- end }}
{{- if .Values.overwrite }}
- --overwrite
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
- --backend
- simple-dir
{{- end }}
- --health-endpoint
- /health
- --hash-algo
- sha256
{{- if .Values.fallbackUrl }}
- --fallback-url
- {{ .Values.fallbackUrl | quote }}
{{- else }}
- --disable-fallback
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
- /data/packages
{{- end }}

{{/* Env for test pods: credentials from the auth Secret when auth is on. */}}
{{- define "pypiserver.testEnv" -}}
- name: PYPI_URL
  value: {{ include "pypiserver.url" . | quote }}
- name: PKG_NAME
  value: {{ .Values.tests.packageName | quote }}
{{- if .Values.auth.enabled }}
- name: PYPI_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "pypiserver.authSecretName" . }}
      key: username
- name: PYPI_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pypiserver.authSecretName" . }}
      key: password
{{- end }}
{{- end }}

{{/* Restricted security settings shared by test containers. */}}
{{- define "pypiserver.testPodSecurityContext" -}}
runAsNonRoot: true
runAsUser: 9898
runAsGroup: 9898
fsGroup: 9898
{{- end }}

{{- define "pypiserver.containerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
{{- end }}
