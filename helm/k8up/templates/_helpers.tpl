{{/* Named templates shared by the chart's manifests. */}}

{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "k8up.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: prefix of object names; the release name alone when it already contains the chart name. */}}
{{- define "k8up.fullname" -}}
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

{{/* Namespace of every namespaced object unless a value says otherwise. */}}
{{- define "k8up.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/* Namespace of the plugin ConfigMaps, which is also where the operator looks for them. */}}
{{- define "k8up.pluginNamespace" -}}
{{- default (include "k8up.namespace" .) .Values.k8up.pluginNamespace -}}
{{- end -}}

{{- define "k8up.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "k8up.labels" -}}
helm.sh/chart: {{ include "k8up.chart" . }}
{{ include "k8up.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the operator pods; they never change between chart versions. */}}
{{- define "k8up.selectorLabels" -}}
app.kubernetes.io/name: {{ include "k8up.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The operator's ServiceAccount. */}}
{{- define "k8up.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "k8up.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Tag of the operator image. */}}
{{- define "k8up.imageTag" -}}
{{- default (printf "v%s" .Chart.AppVersion) .Values.image.tag -}}
{{- end -}}

{{/* The operator image. */}}
{{- define "k8up.image" -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository (include "k8up.imageTag" .) -}}
{{- end -}}

{{/* The image of the backup Jobs (BACKUP_IMAGE): the operator image unless k8up.backupImage says otherwise. */}}
{{- define "k8up.backupImage" -}}
{{- $repository := default (printf "%s/%s" .Values.image.registry .Values.image.repository) .Values.k8up.backupImage.repository -}}
{{- $tag := default (include "k8up.imageTag" .) .Values.k8up.backupImage.tag -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}

{{/* Environment variable of each action's plugin override, checked so that a typo fails the install. */}}
{{- define "k8up.pluginOverrideEnv" -}}
{{- $allowed := list "backup" "prune" "check" "archive" "restore" -}}
{{- range $action, $plugin := .Values.k8up.pluginOverrides }}
{{- if not (has $action $allowed) }}
{{- fail (printf "k8up.pluginOverrides: unknown action %q (expected one of %s)" $action (join ", " $allowed)) }}
{{- end }}
{{- if $plugin }}
- name: K8UP_PLUGIN_{{ upper $action }}
  value: {{ $plugin | quote }}
{{- end }}
{{- end }}
{{- end -}}
