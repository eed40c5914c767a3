{{/* The labels every object of the release carries; name is the component. */}}
{{- define "logging.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: metalk8s
{{- end -}}

{{/* A component's selector labels. */}}
{{- define "logging.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* An image's reference, from {repository, tag}. */}}
{{- define "logging.image" -}}
{{ .repository }}:{{ .tag }}
{{- end -}}

{{/* The store's insert URL, in the cluster's DNS. */}}
{{- define "logging.insertURL" -}}
http://victoria-logs.{{ .Release.Namespace }}.svc:9428/insert/native
{{- end -}}
