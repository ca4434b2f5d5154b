#!/bin/sh
# gen_certs.sh DIR - test certificates made with the openssl CLI, at test time (nothing
# secret is committed). Writes into DIR:
#   ca.pem ca.key                 the test CA
#   server.pem server.key         signed by ca, for localhost and 127.0.0.1 (and ::1)
#   client.pem client.key         signed by ca, CN mars-client (mutual TLS)
#   other-ca.pem                  an unrelated CA
#   other-server.pem other-server.key  signed by other-ca, same names as server.pem
# EC P-256 keys keep generation fast. Exits non-zero if openssl fails.
set -eu
d=$1
mkdir -p "$d"
cd "$d"

ca() { # ca NAME CN
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
}

leaf() { # leaf NAME CA CN EXT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" >/dev/null 2>&1
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
        -out "$1.pem" -days 2 -extfile "$1.ext" >/dev/null 2>&1
    rm -f "$1.csr" "$1.ext"
}

ca ca "mars test CA"
ca other-ca "another test CA"
leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth"
leaf client ca mars-client "extendedKeyUsage=clientAuth"
leaf other-server other-ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth"
rm -f ./*.srl
