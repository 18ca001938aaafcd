{{/* TLS: the serving Secret's name and, per tls.mode, where the CA comes from. */}}

{{- define "entrypoint-guard.serviceName" -}}
{{- include "entrypoint-guard.fullname" . -}}
{{- end -}}

{{- define "entrypoint-guard.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secret.name is required when tls.mode is secret" .Values.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "entrypoint-guard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Every name the API server may use for the Service. */}}
{{- define "entrypoint-guard.dnsNames" -}}
{{- $svc := include "entrypoint-guard.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson -}}
{{- end -}}

{{/* The data of the serving Secret as it is in the cluster (empty under
     `helm template` and on first install). Kept on its own line: the chart
     tests replace it to simulate a Secret found by lookup. */}}
{{- define "entrypoint-guard.tls.lookupSecretData" -}}
{{- $found := lookup "v1" "Secret" .Release.Namespace (include "entrypoint-guard.tlsSecretName" .) -}}
{{- get (default dict $found) "data" | default dict | toJson -}}
{{- end -}}

{{/* Base64 `ca.crt`, `tls.crt` and `tls.key` for tls.mode generate, as JSON.
     An existing Secret holding all three is reused, so an upgrade keeps the
     CA the API server already trusts; otherwise a new CA signs a new cert.
     Called once per render (webhook.yaml): every call generates anew. */}}
{{- define "entrypoint-guard.tls.generated" -}}
{{- $existing := include "entrypoint-guard.tls.lookupSecretData" . | fromJson -}}
{{- if and (get $existing "ca.crt") (get $existing "tls.crt") (get $existing "tls.key") -}}
{{- dict "ca.crt" (get $existing "ca.crt") "tls.crt" (get $existing "tls.crt") "tls.key" (get $existing "tls.key") | toJson -}}
{{- else -}}
{{- $days := int .Values.tls.generate.validityDays -}}
{{- $ca := genCA (printf "%s-ca" (include "entrypoint-guard.fullname" .)) $days -}}
{{- $names := include "entrypoint-guard.dnsNames" . | fromJsonArray -}}
{{- $cert := genSignedCert (index $names 2) nil $names $days $ca -}}
{{- dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) | toJson -}}
{{- end -}}
{{- end -}}
