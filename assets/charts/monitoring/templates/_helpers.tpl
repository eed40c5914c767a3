{{/* The labels every object of the release carries; name is the component. */}}
{{- define "monitoring.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: metalk8s
{{- end -}}

{{/* An image's reference, from {repository, tag}. */}}
{{- define "monitoring.image" -}}
{{ .repository }}:{{ .tag }}
{{- end -}}

{{/* The URL of a Service's port through `kubectl proxy` (its default
port, 8001): what Prometheus and Alertmanager put in their links. */}}
{{- define "monitoring.proxyURL" -}}
http://localhost:8001/api/v1/namespaces/{{ .root.Release.Namespace }}/services/{{ .service }}:web/proxy/
{{- end -}}

{{/* Where the pods run. */}}
{{- define "monitoring.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}


{{/* An address as a URL's host: IPv6 in brackets. */}}
{{- define "monitoring.hostPort" -}}
{{ if contains ":" . }}[{{ . }}]{{ else }}{{ . }}{{ end }}
{{- end -}}

{{/* A Prometheus duration (values.schema.json's, e.g. 1m30s) in
seconds. */}}
{{- define "monitoring.seconds" -}}
{{- $unit := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 "w" 604800.0 "y" 31536000.0 }}
{{- $t := 0.0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" . -1 }}
{{- $t = addf $t (mulf (regexFind "^[0-9]+" . | float64) (get $unit (regexReplaceAll "^[0-9]+" . ""))) }}
{{- end }}
{{- $t }}
{{- end -}}
