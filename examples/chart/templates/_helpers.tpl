{{/* Release name, cut to the 63 characters a DNS label allows. */}}
{{- define "shop.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
