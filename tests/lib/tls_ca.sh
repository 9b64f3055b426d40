#!/bin/sh
# A private CA and server certificates for the TLS tests, made with the
# openssl CLI in a directory the caller owns (and removes).
#
#   . tests/lib/tls_ca.sh; tls_ca_make "$dir"     (from a test script)
#   sh tests/lib/tls_ca.sh "$dir"                 (from a program: the unit tests)
#
# makes in $dir, each NAME.pem with its NAME.key (EC P-256):
#   ca.pem         the test CA: give it as tls-ca / --cacert
#   server.pem     signed by ca, for localhost, 127.0.0.1 and ::1, valid for a day
#   wrong.pem      signed by ca, for wrong.example only
#   expired.pem    signed by ca, for localhost/127.0.0.1/::1, expired in 2020
#   untrusted.pem  for localhost/127.0.0.1/::1, signed by another CA (other-ca.pem)
# Prints nothing unless something fails; returns non-zero then.

tls_ca_leaf() { # DIR NAME CA SAN [STARTDATE ENDDATE]
	_d=$1 _n=$2 _ca=$3 _san=$4
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$_d/$_n.key" -out "$_d/$_n.csr" -subj "/CN=$_n" 2>"$_d/err" ||
		{ cat "$_d/err" >&2; return 1; }
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		"$_san" > "$_d/$_n.ext"
	# `openssl ca` takes explicit dates (OpenSSL 3.0's x509 has no -not_after).
	if [ -n "${5:-}" ]; then
		set -- -startdate "$5" -enddate "$6"
	else
		set -- -days 1
	fi
	openssl ca -batch -config "$_d/$_ca.cnf" -in "$_d/$_n.csr" -out "$_d/$_n.pem" -notext \
		-extfile "$_d/$_n.ext" "$@" 2>"$_d/err" || { cat "$_d/err" >&2; return 1; }
	rm -f "$_d/$_n.csr" "$_d/$_n.ext"
}

tls_ca_ca() { # DIR NAME: a self-signed CA and its `openssl ca` config
	_d=$1 _n=$2
	mkdir -p "$_d/$_n.db" && : > "$_d/$_n.db/index.txt" && echo 1000 > "$_d/$_n.db/serial" ||
		return 1
	cat > "$_d/$_n.cnf" <<CNF
[ca]
default_ca = ca_default
[ca_default]
database = $_d/$_n.db/index.txt
new_certs_dir = $_d/$_n.db
serial = $_d/$_n.db/serial
certificate = $_d/$_n.pem
private_key = $_d/$_n.key
default_md = sha256
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
CNF
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$_d/$_n.key" -out "$_d/$_n.pem" -days 2 -subj "/CN=sluice test $_n" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		2>"$_d/err" || { cat "$_d/err" >&2; return 1; }
}

tls_ca_make() { # DIR
	_dir=$1
	[ -d "$_dir" ] || { echo "tls_ca_make: no directory '$_dir'" >&2; return 1; }
	command -v openssl >/dev/null || { echo "tls_ca_make: no openssl (apt-get install openssl)" >&2; return 1; }
	_local='DNS:localhost,IP:127.0.0.1,IP:::1'
	tls_ca_ca "$_dir" ca &&
	tls_ca_ca "$_dir" other-ca &&
	tls_ca_leaf "$_dir" server ca "$_local" &&
	tls_ca_leaf "$_dir" wrong ca 'DNS:wrong.example' &&
	tls_ca_leaf "$_dir" expired ca "$_local" 20200101000000Z 20200102000000Z &&
	tls_ca_leaf "$_dir" untrusted other-ca "$_local" &&
	rm -f "$_dir/err"
}

case "${0##*/}" in
tls_ca.sh) tls_ca_make "$@" ;;
esac
