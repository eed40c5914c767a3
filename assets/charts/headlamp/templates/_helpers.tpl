{{/* The labels every object of the release carries. */}}
{{- define "headlamp.labels" -}}
app.kubernetes.io/name: headlamp
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: metalk8s
{{- end -}}

{{/* The pods' selector: stable across upgrades. */}}
{{- define "headlamp.selector" -}}
app.kubernetes.io/name: headlamp
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
