#!/bin/sh
# certs.sh DIR: the certificates of the TLS tests, made with the openssl
# command into DIR (which exists). EC P-256 keys: fast to make, and what Go
# (etcd) and OpenSSL both take.
#   ca, other-ca          two unrelated CAs
#   server                by ca, for 127.0.0.1 (and localhost); also a client
#                         certificate, as etcd's gateway dials etcd with it
#   server-othername      by ca, for 127.0.0.2 and elsewhere.invalid only
#   server-expired        by ca, for 127.0.0.1, valid in January 2020 only
#   client                by ca: the one to show etcd
#   client-cn             by ca, with a CommonName: etcd 3.4's gateway refuses
#                         those once auth is on (HTTP 400, "CommonName of
#                         client sending a request against gateway will be
#                         ignored"), so the others have none
#   client-otherca        by other-ca
#   client-expired        by ca, valid in January 2020 only
# Each as NAME.pem and NAME.key. `openssl x509 -days` cannot make a
# certificate that has already expired; `openssl ca -startdate -enddate`
# can, so the expired ones come from a minimal CA database.
set -eu
cd "$1"
cat > ext.cnf <<'END'
[server]
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth, clientAuth
[othername]
subjectAltName = IP:127.0.0.2, DNS:elsewhere.invalid
extendedKeyUsage = serverAuth, clientAuth
[client]
extendedKeyUsage = clientAuth
END
cat > ca.cnf <<'END'
[ca]
default_ca = past
[past]
database = index.txt
new_certs_dir = .
serial = serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
[any]
organizationName = supplied
END
: > index.txt
echo 1000 > serial

key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
}
ca() { # NAME CN
    key "$1"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -out "$1.pem"
}
csr() { # NAME SUBJECT
    key "$1"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
}
signed() { # NAME CA SUBJECT SECTION
    csr "$1" "$3"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 30 \
        -extfile ext.cnf -extensions "$4" -out "$1.pem"
}
expired() { # NAME SUBJECT SECTION (by ca)
    csr "$1" "$2"
    openssl ca -batch -config ca.cnf -notext -in "$1.csr" -startdate 20200101000000Z \
        -enddate 20200131000000Z -extfile ext.cnf -extensions "$3" -out "$1.pem"
}

ca ca "turnstile test CA"
ca other-ca "unrelated test CA"
signed server ca "/O=etcd/CN=etcd" server
signed server-othername ca "/O=etcd/CN=etcd" othername
expired server-expired "/O=etcd/CN=etcd" server
signed client ca "/O=turnstile" client
signed client-cn ca "/O=turnstile/CN=turnstile" client
signed client-otherca other-ca "/O=turnstile" client
expired client-expired "/O=turnstile" client
rm -f ./*.csr ./*.srl ./[0-9]*.pem index.txt* serial* ca.cnf ext.cnf
