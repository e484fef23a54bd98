#!/bin/sh
# TLS material of the compose cluster, made once: a CA, one certificate per node and one client
# certificate, in DIR (docker-compose.yml's `certs` service runs this in the RabbitMQ image with
# ./cluster/certs as DIR, before any node starts; `superticks cluster up` and a bare
# `docker compose up -d` both go through it). Existing files are kept, so it is idempotent; delete
# DIR to make new ones. Usage: make-certs.sh DIR [NODE...] (default nodes rabbit1 rabbit2 rabbit3)
#
#   DIR/ca.pem                    the CA certificate: what clients trust (SUPERTICKS_CA_FILE)
#   DIR/private/ca.key            the CA's key (root only; nothing reads it but this script)
#   DIR/NODE/{cert,key,ca}.pem    a node's certificate (SAN: NODE, superticks-NODE, localhost,
#                                 127.0.0.1), its key (readable by user rabbitmq only) and the CA
#   DIR/client/{cert,key}.pem     a client certificate (SUPERTICKS_CERT_FILE/KEY_FILE), optional
set -eu
dir="${1:?usage: make-certs.sh DIR [NODE...]}"
shift
[ "$#" -gt 0 ] || set -- rabbit1 rabbit2 rabbit3
days=3650
umask 022
mkdir -p "$dir/private"
chmod 700 "$dir/private"

if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/private/ca.key" ]; then
  echo "make-certs: new CA in $dir/ca.pem"
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
    -keyout "$dir/private/ca.key" -out "$dir/ca.pem" \
    -subj "/CN=superticks cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$dir/private/ca.key"
  rm -rf "$dir/client"
  for node in "$@"; do rm -rf "${dir:?}/$node"; done  # signed by the old CA
fi

issue() {  # issue NAME CN SAN USAGE
  out="$dir/$1"
  [ -s "$out/cert.pem" ] && [ -s "$out/key.pem" ] && return 0
  echo "make-certs: certificate for $2 in $out"
  mkdir -p "$out"
  ext=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$4" "$3" >"$ext"
  openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$out/key.pem" -out "$out/req.csr" \
    -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$out/req.csr" -CA "$dir/ca.pem" -CAkey "$dir/private/ca.key" \
    -CAcreateserial -CAserial "$dir/private/ca.srl" -days "$days" -sha256 \
    -extfile "$ext" -out "$out/cert.pem" 2>/dev/null
  rm -f "$out/req.csr" "$ext"
  cp "$dir/ca.pem" "$out/ca.pem"
  chmod 644 "$out/cert.pem" "$out/ca.pem"
  chmod 600 "$out/key.pem"
}

for node in "$@"; do
  issue "$node" "$node" "DNS:$node,DNS:superticks-$node,DNS:localhost,IP:127.0.0.1" serverAuth
  # The broker runs as user rabbitmq: its key is that user's alone.
  if id rabbitmq >/dev/null 2>&1; then chown rabbitmq "$dir/$node/key.pem"; fi
done
issue client superticks-client "DNS:superticks-client" clientAuth
chmod 644 "$dir/client/key.pem"  # the host user's, like SUPERTICKS_PASSWORD
chmod 644 "$dir/ca.pem"
