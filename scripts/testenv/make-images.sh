#!/usr/bin/env bash
# Push the standard entrypoint-guard test images to a plain-HTTP registry.
#
#   scripts/testenv/make-images.sh 127.0.0.1:PORT
#
# stdout: one line per pushed tag, "<repo>:<tag> <digest>" (for an index, the
# digest of the INDEX, i.e. what the registry serves for the tag). Logs go to
# stderr. Needs umoci, skopeo, jq, sha256sum (scripts/testenv/install.sh).
#
# Images have no Cmd, a fixed created time and no history, so the digests are
# the same on every run and every machine (check: run twice, compare).
#
#   chalk/bare:1.0              ["/chalk","exec","--"]                       OCI manifest
#   chalk/one:1.0               ["/chalk","exec","--exec-command-name","echo","--"]
#   chalk/two:1.0               ["/chalk","exec","--exec-command-name","one","--","entrypoint"]
#   chalk/shell:1.0             ["/chalk","exec","--exec-command-name","/bin/sh","--","-c","echo hello"]
#   chalk/flags:1.0             ["/chalk","exec","--heartbeat","--exec-command-name","python","--"]
#   plain/app:1.0               ["python"]                                   (no /chalk file)
#   plain/none:1.0              no Entrypoint at all                         (no /chalk file)
#   plain/empty:1.0             Entrypoint [""]                              (no /chalk file)
#   chalk/bare-v2s2:1.0         bare, Docker schema 2 manifest
#   chalk/multi:1.0             OCI index: linux/amd64 + linux/arm64, both bare
#   chalk/multi-disagree:1.0    OCI index: amd64 bare, arm64 ["/chalk","exec","--exec-command-name","echo","--"]
#   chalk/multi-attest:1.0      OCI index: amd64 + arm64 bare + an unknown/unknown
#                               attestation manifest (as docker buildx writes)
#   chalk/multi-v2s2:1.0        Docker manifest list (converted by skopeo): amd64 + arm64
#                               bare, children Docker schema 2
# chalk/multi's and chalk/multi-attest's amd64 child IS chalk/bare:1.0 (same digest).
# Every chalk/* image has one small layer holding /chalk and /chalk.json.
set -euo pipefail

REG="${1:?usage: $0 REGISTRY_HOSTPORT}"
export SOURCE_DATE_EPOCH=1704067200
CREATED=2024-01-01T00:00:00Z

log() { printf '[make-images] %s\n' "$*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
L="$work/layout"
umoci init --layout "$L"

# ---- single-platform images ---------------------------------------------------
# base images: "plainbase" (no layer), "chalkbase" (one layer: /chalk, /chalk.json)
umoci new --image "$L:plainbase"
umoci config --image "$L:plainbase" --no-history --created "$CREATED" --os linux --architecture amd64
mkdir -p "$work/root"
printf '#!/bin/sh\n# stand-in for chalk\nexit 0\n' >"$work/root/chalk"
printf '{"CHALK_ID":"TESTTESTTESTTEST"}\n' >"$work/root/chalk.json"
chmod 0755 "$work/root/chalk"
chmod 0644 "$work/root/chalk.json"
touch -d "@$SOURCE_DATE_EPOCH" "$work/root/chalk" "$work/root/chalk.json"
umoci insert --history.created "$CREATED" --history.created_by "make-images.sh" --image "$L:plainbase" --tag chalkbase "$work/root/chalk" /chalk
umoci insert --history.created "$CREATED" --history.created_by "make-images.sh" --image "$L:chalkbase" "$work/root/chalk.json" /chalk.json

# mk TAG BASE ARCH ENTRYPOINT...  (no ENTRYPOINT words = leave Entrypoint unset)
mk() {
  local tag="$1" base="$2" arch="$3"; shift 3
  local args=() e
  for e in "$@"; do args+=(--config.entrypoint "$e"); done
  umoci config --image "$L:$base" --tag "$tag" --no-history --created "$CREATED" \
    --architecture "$arch" ${args[@]+"${args[@]}"}
}
BARE=(/chalk exec --)
ECHO=(/chalk exec --exec-command-name echo --)

mk bare      chalkbase amd64 "${BARE[@]}"
mk one       chalkbase amd64 "${ECHO[@]}"
mk two       chalkbase amd64 /chalk exec --exec-command-name one -- entrypoint
mk shell     chalkbase amd64 /chalk exec --exec-command-name /bin/sh -- -c "echo hello"
mk flags     chalkbase amd64 /chalk exec --heartbeat --exec-command-name python --
mk app       plainbase amd64 python
mk none      plainbase amd64
mk empty     plainbase amd64 ""
mk bare-arm64 chalkbase arm64 "${BARE[@]}"
mk echo-arm64 chalkbase arm64 "${ECHO[@]}"

# ---- hand-written OCI objects -----------------------------------------------------
# put_blob FILE -> stores it in the layout, prints "sha256:HEX SIZE"
put_blob() {
  local hex size
  hex="$(sha256sum "$1" | cut -d' ' -f1)"
  size="$(stat -c %s "$1")"
  cp "$1" "$L/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}
# desc_of TAG -> the layout's descriptor (JSON) for TAG, without annotations
desc_of() {
  jq -c --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | del(.annotations)' "$L/index.json"
}
# add_ref TAG MEDIATYPE DIGEST SIZE -> tag a blob in the layout's index.json
add_ref() {
  jq --arg t "$1" --arg mt "$2" --arg d "$3" --argjson s "$4" \
    '.manifests = [.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] != $t)]
       + [{mediaType:$mt, digest:$d, size:$s, annotations:{"org.opencontainers.image.ref.name":$t}}]' \
    "$L/index.json" >"$work/index.tmp"
  mv "$work/index.tmp" "$L/index.json"
}
# attestation TAG_OF_SUBJECT -> descriptor (JSON) of an in-toto attestation manifest
attestation() {
  local subj intoto cfg d s
  subj="$(desc_of "$1" | jq -r .digest)"
  printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[{"name":"test","digest":{"sha256":"%s"}}],"predicate":{}}' "${subj#sha256:}" >"$work/intoto.json"
  read -r d s < <(put_blob "$work/intoto.json")
  intoto="{\"mediaType\":\"application/vnd.in-toto+json\",\"digest\":\"$d\",\"size\":$s,\"annotations\":{\"in-toto.io/predicate-type\":\"https://spdx.dev/Document\"}}"
  printf '{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$d" >"$work/att-config.json"
  read -r d s < <(put_blob "$work/att-config.json")
  cfg="{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$d\",\"size\":$s}"
  jq -cn --argjson c "$cfg" --argjson l "$intoto" \
    '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json", config:$c, layers:[$l]}' >"$work/att-manifest.json"
  read -r d s < <(put_blob "$work/att-manifest.json")
  jq -cn --arg d "$d" --argjson s "$s" --arg subj "$subj" \
    '{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$d, size:$s,
      annotations:{"vnd.docker.reference.digest":$subj, "vnd.docker.reference.type":"attestation-manifest"},
      platform:{architecture:"unknown", os:"unknown"}}'
}
# mk_index TAG ENTRY_JSON... (each entry: a descriptor, platform included)
mk_index() {
  local tag="$1" d s; shift
  jq -cn '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json", manifests:$ARGS.positional}' \
    --jsonargs "$@" >"$work/index-$tag.json"
  read -r d s < <(put_blob "$work/index-$tag.json")
  add_ref "$tag" application/vnd.oci.image.index.v1+json "$d" "$s"
}
plat() { desc_of "$1" | jq -c --arg a "$2" '. + {platform:{architecture:$a, os:"linux"}}'; }

mk_index multi          "$(plat bare amd64)" "$(plat bare-arm64 arm64)"
mk_index multi-disagree "$(plat bare amd64)" "$(plat echo-arm64 arm64)"
mk_index multi-attest   "$(plat bare amd64)" "$(plat bare-arm64 arm64)" "$(attestation bare)"

# ---- push -------------------------------------------------------------------------------
# push SRC_TAG DEST_REPO:TAG [skopeo copy flags...]
push() {
  local src="$1" dest="$2"; shift 2
  skopeo copy -q --dest-tls-verify=false "$@" "oci:$L:$src" "docker://$REG/$dest" >&2
  local digest
  digest="$(skopeo inspect --tls-verify=false --raw "docker://$REG/$dest" | sha256sum | cut -d' ' -f1)"
  echo "$dest sha256:$digest"
}
log "pushing to $REG"
push bare           chalk/bare:1.0
push one            chalk/one:1.0
push two            chalk/two:1.0
push shell          chalk/shell:1.0
push flags          chalk/flags:1.0
push app            plain/app:1.0
push none           plain/none:1.0
push empty          plain/empty:1.0
push bare           chalk/bare-v2s2:1.0 --format v2s2
push multi          chalk/multi:1.0 --all
push multi-disagree chalk/multi-disagree:1.0 --all
push multi-attest   chalk/multi-attest:1.0 --all
push multi          chalk/multi-v2s2:1.0 --all --format v2s2
log "done"
