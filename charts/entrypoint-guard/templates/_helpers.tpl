{{/* Names, labels and the values derived from several settings. */}}

{{- define "entrypoint-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or the release name alone when it already holds the chart name. */}}
{{- define "entrypoint-guard.fullname" -}}
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

{{- define "entrypoint-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entrypoint-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "entrypoint-guard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "entrypoint-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: entrypoint-guard
{{- end -}}

{{- define "entrypoint-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "entrypoint-guard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "entrypoint-guard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The server reads Secrets and ServiceAccounts only to use imagePullSecrets. */}}
{{- define "entrypoint-guard.readsPullSecrets" -}}
{{- if and .Values.config.registry.enabled .Values.config.registry.pullSecrets -}}true{{- end -}}
{{- end -}}

{{/* Whether the server talks to the API at all: pull secrets, or the background audit. */}}
{{- define "entrypoint-guard.needsRbac" -}}
{{- if or (include "entrypoint-guard.readsPullSecrets" .) .Values.backgroundAudit.enabled -}}true{{- end -}}
{{- end -}}

{{/* Namespaces no webhook may ever see: its own (a webhook that intercepts its
     own pods deadlocks its rollout), kube-system, and the configured ones. */}}
{{- define "entrypoint-guard.excludedNamespaces" -}}
{{- concat (list "kube-system" .Release.Namespace) .Values.webhook.excludeNamespaces | uniq | toJson -}}
{{- end -}}

{{/* The mode the helm test can expect in tests.namespace (unlabelled). */}}
{{- define "entrypoint-guard.tests.expect" -}}
{{- if .Values.tests.expect -}}
{{- .Values.tests.expect -}}
{{- else if and (eq .Values.webhook.defaultMode "fix") (eq .Values.config.mode "fix") -}}
fixed
{{- else -}}
reported
{{- end -}}
{{- end -}}

{{/* The program's configuration: config values plus the settings the chart owns
     (listen addresses and certificate paths) and the helm test's image facts. */}}
{{- define "entrypoint-guard.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- $server := deepCopy (default dict $c.server) -}}
{{- $_ := set $server "listen" (printf "0.0.0.0:%d" (int .Values.ports.webhook)) -}}
{{- $_ := set $server "healthListen" (printf "0.0.0.0:%d" (int .Values.ports.health)) -}}
{{- $_ := set $server "tlsCert" "/etc/entrypoint-guard/tls/tls.crt" -}}
{{- $_ := set $server "tlsKey" "/etc/entrypoint-guard/tls/tls.key" -}}
{{- $_ := set $c "server" $server -}}
{{- with .Values.credentialPlugins.config -}}
{{- if not $.Values.credentialPlugins.binVolume -}}
{{- fail "credentialPlugins.binVolume (the volume holding the plugin executables) is required with credentialPlugins.config" -}}
{{- end -}}
{{- $registry := deepCopy (default dict $c.registry) -}}
{{- $credentials := deepCopy (default dict $registry.credentials) -}}
{{- $_ := set $credentials "kubeletPlugins" (dict "config" "/etc/entrypoint-guard/credential-providers.yaml" "binDir" "/etc/entrypoint-guard/credential-plugins" "timeout" $.Values.credentialPlugins.timeout) -}}
{{- $_ := set $registry "credentials" $credentials -}}
{{- $_ := set $c "registry" $registry -}}
{{- end -}}
{{- if .Values.tests.enabled -}}
{{- $facts := deepCopy (default dict $c.imageFacts) -}}
{{- $bare := concat $c.wrapper (list "--") -}}
{{- $_ := set $facts .Values.tests.probeImage (dict "entrypoint" $bare "digest" .Values.tests.probeDigest) -}}
{{- $_ := set $c "imageFacts" $facts -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Every kind the program inspects with this configuration, as a JSON list
     of {group, plural, versions, pod}: the built-in kinds, then those of
     config.customKinds (a preset's from the file, an entry its own).
     files/kinds.yaml is generated from the program's own table
     (`entrypoint-guard kinds --chart`; a test keeps it in step), so the
     webhook rules and the RBAC cover exactly the kinds the program inspects. */}}
{{- define "entrypoint-guard.kinds" -}}
{{- $file := .Files.Get "files/kinds.yaml" | fromYaml -}}
{{- $out := list -}}
{{- range $kind := $file.builtin -}}
{{- $pod := and (eq $kind.kind "Pod") (eq $kind.group "") -}}
{{- $out = append $out (dict "group" $kind.group "plural" $kind.plural "versions" $kind.versions "pod" $pod) -}}
{{- end -}}
{{- range $entry := (default list .Values.config.customKinds) -}}
{{- if kindIs "string" $entry -}}
{{- $kinds := get $file.presets $entry -}}
{{- if not $kinds -}}
{{- fail (printf "config.customKinds: unknown preset %q (files/kinds.yaml lists them)" $entry) -}}
{{- end -}}
{{- range $kind := $kinds -}}
{{- $out = append $out (dict "group" $kind.group "plural" $kind.plural "versions" $kind.versions "pod" false) -}}
{{- end -}}
{{- else -}}
{{- $out = append $out (dict "group" $entry.group "plural" $entry.plural "versions" $entry.versions "pod" false) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The rules for the kinds of "entrypoint-guard.kinds", as a JSON list of
     {group, versions, resources}: the kinds of one group and versions share
     a rule, in the table's order. Called with (dict "ctx" $ "take" T): T is
     all, pods (the Pod kind only) or workloads (every kind but Pods). */}}
{{- define "entrypoint-guard.rules" -}}
{{- $take := .take -}}
{{- $rules := list -}}
{{- $at := dict -}}
{{- range $kind := include "entrypoint-guard.kinds" .ctx | fromJsonArray -}}
{{- if or (eq $take "all") (and (eq $take "pods") $kind.pod) (and (eq $take "workloads") (not $kind.pod)) -}}
{{- $key := printf "%s/%s" $kind.group (join "," $kind.versions) -}}
{{- if hasKey $at $key -}}
{{- $rule := index $rules (get $at $key) -}}
{{- $_ := set $rule "resources" (append $rule.resources $kind.plural) -}}
{{- else -}}
{{- $_ := set $at $key (len $rules) -}}
{{- $rules = append $rules (dict "group" $kind.group "versions" $kind.versions "resources" (list $kind.plural)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $rules -}}
{{- end -}}
