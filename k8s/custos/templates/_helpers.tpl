{{- define "custos.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "custos.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "custos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "custos.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "custos.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "custos.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "custos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "custos.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "custos.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "custos.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "custos.fullname" .)) .Values.rules.existingConfigMap -}}
{{- end -}}

{{/* The same hardening on every container; runAsUser only where the image's is known. */}}
{{- define "custos.securityContext" -}}
runAsNonRoot: true
{{- with .runAsUser }}
runAsUser: {{ int . }}
{{- end }}
{{- with .runAsGroup }}
runAsGroup: {{ int . }}
{{- end }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "custos.custosSecurityContext" -}}
{{ include "custos.securityContext" (dict "runAsUser" .Values.runAsUser "runAsGroup" .Values.runAsGroup) }}
{{- end -}}

{{- define "custos.listen" -}}
{{- printf "%s:%d" .address (int .port) -}}
{{- end -}}

{{/*
gRPC health probes on a service's health-only port. `liveness` names the health service a
liveness probe asks (the services: "liveness", alive even while refusing); without
`ready`, no readiness probe (the shipper: Cloud Logging's state is not the pod's).
*/}}
{{- define "custos.grpcProbes" -}}
startupProbe:
  grpc: { port: {{ int .port }} }
  periodSeconds: 1
  failureThreshold: 60
{{- if .ready }}
readinessProbe:
  grpc: { port: {{ int .port }} }
  periodSeconds: 5
  failureThreshold: 2
{{- end }}
livenessProbe:
  grpc: { port: {{ int .port }}{{ with .liveness }}, service: {{ . }}{{ end }} }
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/*
Envoy's bootstrap: envoy/bootstrap.yaml of the project (files/ links to it), its
placeholders filled with the values formatted as custos.envoy_config formats them, so the
pod and the local stack run the same configuration. A test renders both and compares.
*/}}
{{- define "custos.envoyBootstrap" -}}
{{- $v := .Values -}}
{{- $servers := list -}}
{{- range $v.oidc.issuers -}}
{{- $servers = append $servers .issuer -}}
{{- end -}}
{{- $resource := printf "%s%s" (trimSuffix "/" $v.publicUrl) $v.mcpServer.path -}}
{{- $metadata := dict "resource" $resource "authorization_servers" $servers "bearer_methods_supported" (list "header") -}}
{{- $fill := dict
  "listen_address" $v.listenAddress
  "listen_port" (int $v.ports.envoy)
  "admin_port" (int $v.ports.envoyAdmin)
  "ready_port" (int $v.ports.envoyReady)
  "authz_address" "127.0.0.1"
  "authz_port" (int $v.ports.extauthz)
  "extproc_address" "127.0.0.1"
  "extproc_port" (int $v.ports.extproc)
  "extproc_timeout" (include "custos.duration" $v.envoy.extprocTimeoutMs)
  "authz_timeout" (include "custos.duration" $v.envoy.authzTimeoutMs)
  "upstream_address" "127.0.0.1"
  "upstream_port" (int $v.mcpServer.port)
  "mcp_path" $v.mcpServer.path
  "max_request_bytes" (int $v.envoy.maxRequestBytes)
  "buffer_limit_bytes" (int $v.envoy.bufferLimitBytes)
  "stream_idle_timeout" (printf "%ds" (int $v.envoy.streamIdleTimeoutSeconds))
  "max_stream_duration" (printf "%ds" (int $v.envoy.maxStreamDurationSeconds))
  "max_connections" (int $v.envoy.maxConnections)
  "request_headers_timeout" (printf "%ds" (int $v.envoy.requestHeadersTimeoutSeconds))
  "request_timeout" (printf "%ds" (int $v.envoy.requestTimeoutSeconds))
  "connection_idle_timeout" (printf "%ds" (int $v.envoy.connectionIdleTimeoutSeconds))
  "drain_timeout" (printf "%ds" (int $v.envoy.drainTimeoutSeconds))
  "max_heap_bytes" (int $v.envoy.maxHeapBytes)
  "xff_num_trusted_hops" (int $v.envoy.xffNumTrustedHops)
  "resource_metadata_json" ($metadata | toJson | toJson)
-}}
{{- $out := .Files.Get "files/envoy-bootstrap.yaml" -}}
{{- if not $out -}}
{{- fail "files/envoy-bootstrap.yaml is missing from the chart (it links to envoy/bootstrap.yaml)" -}}
{{- end -}}
{{- range $name, $value := $fill -}}
{{- $out = replace (printf "${%s}" $name) (toString $value) $out -}}
{{- end -}}
{{- with regexFind "\\$\\{[a-z_]+\\}" $out -}}
{{- fail (printf "the Envoy bootstrap has a placeholder the chart does not fill: %s" .) -}}
{{- end -}}
{{- $out -}}
{{- end -}}

{{- define "custos.duration" -}}
{{- $ms := int . -}}
{{- printf "%d.%03ds" (div $ms 1000) (mod $ms 1000) -}}
{{- end -}}

{{/*
The spool is one emptyDir for two writers (ext_authz's refusals, ext_proc's exchanges):
each may fill three eighths of it, which leaves a quarter for quarantine and the segment
being written, so the volume never passes its sizeLimit (the kubelet would evict the pod).
*/}}
{{- define "custos.maxSpoolBytes" -}}
{{- div (mul (int .Values.audit.spool.sizeMiB) 1048576 3) 8 -}}
{{- end -}}

{{/*
The containers that each get a /tmp of their own (an emptyDir named tmp-<container>), as
a JSON list (`include` returns text): the volumes and the storage they request are
counted from this one list.
*/}}
{{- define "custos.tmpContainers" -}}
{{- list "shipper" "extauthz" "extproc" "envoy" "mcp-server" | toJson -}}
{{- end -}}

{{/*
The pod's emptyDirs (the spool, each container's /tmp) as an ephemeral-storage request,
put on the shipper's: the scheduler then places the pod where they fit, instead of a node
whose disk pressure would evict it, spool and unshipped records with it.
*/}}
{{- define "custos.shipperResources" -}}
{{- $resources := deepCopy .Values.resources.shipper -}}
{{- $requests := default dict $resources.requests -}}
{{- if not (hasKey $requests "ephemeral-storage") -}}
{{- $tmps := include "custos.tmpContainers" . | fromJsonArray -}}
{{- $mib := mul (len $tmps) (int .Values.tmpSizeMiB) -}}
{{- if eq .Values.audit.spool.volume "emptyDir" -}}
{{- $mib = add $mib (int .Values.audit.spool.sizeMiB) -}}
{{- end -}}
{{- $_ := set $requests "ephemeral-storage" (printf "%dMi" $mib) -}}
{{- end -}}
{{- $_ := set $resources "requests" $requests -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* What the schema cannot say: values that are each valid but do not go together. */}}
{{- define "custos.checkValues" -}}
{{- $v := .Values -}}
{{- $ports := dict "mcpServer.port" $v.mcpServer.port -}}
{{- range $name, $port := $v.ports -}}
{{- $_ := set $ports (printf "ports.%s" $name) $port -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $name, $port := $ports -}}
{{- $key := toString (int $port) -}}
{{- if hasKey $seen $key -}}
{{- fail (printf "%s and %s are both %s: every port in the pod must differ" (get $seen $key) $name $key) -}}
{{- end -}}
{{- $_ := set $seen $key $name -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas is above autoscaling.maxReplicas" -}}
{{- end -}}
{{- if gt (add (int $v.mcpServer.preStopSleepSeconds) 15) (int $v.terminationGracePeriodSeconds) -}}
{{- fail "terminationGracePeriodSeconds must leave 15 s after mcpServer.preStopSleepSeconds: the sidecars stop after the MCP server, and the shipper's last pass takes up to 10 s" -}}
{{- end -}}
{{- with include "custos.quantityBytes" (dig "envoy" "limits" "memory" "" $v.resources) -}}
{{- if gt (add (int64 $v.envoy.maxHeapBytes) 100663296) (int64 .) -}}
{{- fail "envoy.maxHeapBytes must stay 96 MiB below resources.envoy.limits.memory: Envoy's binary and socket buffers are not heap, and at the limit the kernel kills Envoy with every stream it holds" -}}
{{- end -}}
{{- end -}}
{{- if and $v.configConnector.enabled $v.configConnector.workloadIdentityBinding (not $v.serviceAccount.create) (not $v.serviceAccount.name) -}}
{{- fail "serviceAccount.name is needed when serviceAccount.create is false: else the Workload Identity binding would name the namespace's default service account" -}}
{{- end -}}
{{- end -}}

{{/* A memory quantity ("256Mi", "1G", "268435456") in bytes; empty for one it cannot read
("0.5Gi"), which is then not checked. */}}
{{- define "custos.quantityBytes" -}}
{{- $quantity := toString . -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "K" 1000 "M" 1000000 "G" 1000000000 -}}
{{- $number := regexFind "^[0-9]+" $quantity -}}
{{- $unit := trimPrefix $number $quantity -}}
{{- if and $number (or (eq $unit "") (hasKey $units $unit)) -}}
{{- mul (int64 $number) (int64 (default 1 (get $units $unit))) -}}
{{- end -}}
{{- end -}}

{{- define "custos.workloadKind" -}}
{{- if eq .Values.audit.spool.volume "persistentVolumeClaim" -}}StatefulSet{{- else -}}Deployment{{- end -}}
{{- end -}}
