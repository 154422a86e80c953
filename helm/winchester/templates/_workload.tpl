{{/*
A worker Deployment and its companions (PodDisruptionBudget, HorizontalPodAutoscaler, KEDA ScaledObject).
Called with dict "root" $ "values" <triggerWorker|pipelineWorker> "component" <name> "args" <list>
"lagGroup" <default consumer group> "lagTopic" <default topic>.
*/}}
{{- define "winchester.worker" -}}
{{- $root := .root }}
{{- $w := .values }}
{{- $name := printf "%s-%s" (include "winchester.fullname" $root) .component | trunc 63 | trimSuffix "-" }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "winchester.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if not (or $w.autoscaling.enabled $w.keda.enabled) }}
  replicas: {{ $w.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "winchester.componentSelectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "winchester.componentLabels" $ctx | nindent 8 }}
        {{- with $w.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # A changed configuration or Secret rolls the workers, which read them only at start.
        checksum/config: {{ include "winchester.configData" $root | sha256sum }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- with $w.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "winchester.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # Workers finish the batch in hand, checkpoint and leave their consumer groups on SIGTERM.
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .component }}
          image: {{ include "winchester.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
            {{- with $w.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          env:
            {{- include "winchester.env" (dict "root" $root "secretName" (include "winchester.secretName" $root)) | nindent 12 }}
            {{- with $w.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $root.Values.extraEnvFrom }}
          envFrom:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /healthz
              port: metrics
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: metrics
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $w.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "winchester.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "winchester.volumes" (dict "root" $root "configMap" (include "winchester.configMapName" $root)) | nindent 8 }}
      {{- with $w.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- if $w.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "winchester.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if and (not (kindIs "invalid" $w.podDisruptionBudget.minAvailable)) (ne (toString $w.podDisruptionBudget.minAvailable) "") }}
  minAvailable: {{ $w.podDisruptionBudget.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $w.podDisruptionBudget.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "winchester.componentSelectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- if $w.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "winchester.componentLabels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $w.autoscaling.minReplicas }}
  maxReplicas: {{ $w.autoscaling.maxReplicas }}
  metrics:
    {{- with $w.autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $w.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
{{- end }}
{{- if $w.keda.enabled }}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "winchester.componentLabels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    name: {{ $name }}
  minReplicaCount: {{ $w.keda.minReplicaCount }}
  maxReplicaCount: {{ $w.keda.maxReplicaCount }}
  pollingInterval: {{ $w.keda.pollingInterval }}
  cooldownPeriod: {{ $w.keda.cooldownPeriod }}
  triggers:
    - type: kafka
      metadata:
        bootstrapServers: {{ join "," $root.Values.kafka.brokers | quote }}
        consumerGroup: {{ $w.keda.consumerGroup | default .lagGroup | quote }}
        topic: {{ $w.keda.topic | default .lagTopic | quote }}
        lagThreshold: {{ $w.keda.lagThreshold | quote }}
        activationLagThreshold: {{ $w.keda.activationLagThreshold | quote }}
        # Partitions beyond the replicas' count would sit idle: never scale past the partition count.
        allowIdleConsumers: "false"
        offsetResetPolicy: earliest
      {{- with $w.keda.authenticationRef }}
      authenticationRef:
        name: {{ . }}
      {{- end }}
{{- end }}
{{- end }}
