{{/* Chart name, cut to the 63 characters a label value allows. */}}
{{- define "winchester.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the prefix of every resource name. */}}
{{- define "winchester.fullname" -}}
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

{{- define "winchester.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "winchester.labels" -}}
helm.sh/chart: {{ include "winchester.chart" . }}
{{ include "winchester.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: winchester
{{- end }}

{{- define "winchester.selectorLabels" -}}
app.kubernetes.io/name: {{ include "winchester.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels and selector labels of one component: dict "root" $ "component" "trigger-worker". */}}
{{- define "winchester.componentLabels" -}}
{{ include "winchester.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "winchester.componentSelectorLabels" -}}
{{ include "winchester.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "winchester.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "winchester.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "winchester.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "winchester.secretName" -}}
{{- if .Values.secrets.create }}
{{- include "winchester.fullname" . }}
{{- else }}
{{- required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret }}
{{- end }}
{{- end }}

{{- define "winchester.configMapName" -}}
{{- .Values.config.existingConfigMap | default (include "winchester.fullname" .) }}
{{- end }}

{{/* The files of the configuration directory: the values' texts, else the chart's copies of etc/. */}}
{{- define "winchester.configData" -}}
winchester.yaml: |-
{{ .Values.config.winchesterYaml | default (.Files.Get "files/winchester.yaml") | trimSuffix "\n" | indent 2 }}
event_definitions.yaml: |-
{{ .Values.config.eventDefinitions | default (.Files.Get "files/event_definitions.yaml") | trimSuffix "\n" | indent 2 }}
triggers.yaml: |-
{{ .Values.config.triggers | default (.Files.Get "files/triggers.yaml") | trimSuffix "\n" | indent 2 }}
pipelines.yaml: |-
{{ .Values.config.pipelines | default (.Files.Get "files/pipelines.yaml") | trimSuffix "\n" | indent 2 }}
{{- range $name, $text := .Values.config.extraFiles }}
{{ $name }}: |-
{{ $text | trimSuffix "\n" | indent 2 }}
{{- end }}
{{- end }}

{{/* Environment of every winchester container: dict "root" $ "secretName" <Secret with the credentials>. */}}
{{- define "winchester.env" -}}
{{- $secret := .secretName }}
{{- with .root -}}
- name: WINCHESTER_CONFIG
  value: /etc/winchester/winchester.yaml
- name: WINCHESTER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.databaseUrl }}
{{- with .Values.kafka.brokers }}
- name: WINCHESTER_KAFKA_BROKERS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.kafka.clientId }}
- name: WINCHESTER_KAFKA_CLIENT_ID
  value: {{ . | quote }}
{{- end }}
{{- if ne .Values.kafka.sasl.mechanism "none" }}
- name: WINCHESTER_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: WINCHESTER_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.kafkaSaslUsername }}
- name: WINCHESTER_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.kafkaSaslPassword }}
{{- end }}
{{- if .Values.kafka.ssl.enabled }}
- name: WINCHESTER_KAFKA_SSL_ENABLED
  value: "true"
{{- if .Values.kafka.ssl.existingSecret }}
- name: WINCHESTER_KAFKA_SSL_CA_FILE
  value: /etc/winchester-kafka-tls/ca.crt
{{- end }}
{{- end }}
{{- with .Values.schemaRegistry.url }}
- name: WINCHESTER_SCHEMA_REGISTRY_URL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.schemaRegistry.basicAuth }}
- name: WINCHESTER_SCHEMA_REGISTRY_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.schemaRegistryUsername }}
- name: WINCHESTER_SCHEMA_REGISTRY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.schemaRegistryPassword }}
{{- end }}
- name: WINCHESTER_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- with .Values.logLevel }}
- name: WINCHESTER_LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes of every winchester pod: the configuration, /tmp, and the Kafka TLS files. */}}
{{- define "winchester.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if and .root.Values.kafka.ssl.enabled .root.Values.kafka.ssl.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .root.Values.kafka.ssl.existingSecret }}
{{- end }}
{{- end }}

{{- define "winchester.volumeMounts" -}}
- name: config
  mountPath: /etc/winchester
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if and .Values.kafka.ssl.enabled .Values.kafka.ssl.existingSecret }}
- name: kafka-tls
  mountPath: /etc/winchester-kafka-tls
  readOnly: true
{{- end }}
{{- end }}

{{/* Checks across values that values.schema.json cannot express. */}}
{{- define "winchester.validate" -}}
{{- range $key := list "triggerWorker" "pipelineWorker" }}
{{- $w := index $.Values $key }}
{{- if and $w.autoscaling.enabled $w.keda.enabled }}
{{- fail (printf "%s: autoscaling.enabled and keda.enabled both set; KEDA makes its own HorizontalPodAutoscaler, choose one" $key) }}
{{- end }}
{{- if and $w.podDisruptionBudget.enabled (not (kindIs "invalid" $w.podDisruptionBudget.minAvailable)) (ne (toString $w.podDisruptionBudget.minAvailable) "") (not (kindIs "invalid" $w.podDisruptionBudget.maxUnavailable)) (ne (toString $w.podDisruptionBudget.maxUnavailable) "") }}
{{- fail (printf "%s.podDisruptionBudget: set minAvailable or maxUnavailable, not both" $key) }}
{{- end }}
{{- end }}
{{- if and .Values.secrets.create .Values.secrets.existingSecret }}
{{- fail "secrets: set create to false to use existingSecret" }}
{{- end }}
{{- if and .Values.secrets.create (ne .Values.kafka.sasl.mechanism "none") (or (not .Values.kafka.sasl.username) (not .Values.kafka.sasl.password)) }}
{{- fail (printf "kafka.sasl.mechanism is %s: set kafka.sasl.username and kafka.sasl.password (or secrets.existingSecret)" .Values.kafka.sasl.mechanism) }}
{{- end }}
{{- if and .Values.secrets.create .Values.schemaRegistry.basicAuth (or (not .Values.schemaRegistry.username) (not .Values.schemaRegistry.password)) }}
{{- fail "schemaRegistry.basicAuth is true: set schemaRegistry.username and schemaRegistry.password (or secrets.existingSecret)" }}
{{- end }}
{{- end }}
