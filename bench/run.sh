#!/usr/bin/env bash
# Benchmarks wharf against the real peers on this machine, side by side in one
# run: OpenSSH's internal-sftp, vsftpd (FTPS), nginx (sendfile). Run by hand, as
# root (it installs Debian packages and creates a throwaway system user):
#
#   bash bench/run.sh                 # 1 GiB files, 5 repetitions
#   bash bench/run.sh --size 256M --reps 3
#
# Results (medians and wharf ÷ peer ratios) go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh needs root (apt-get, a system user for sshd and vsftpd)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# openssh-server: sshd with internal-sftp; vsftpd: FTPS; nginx-light: static files
# with sendfile; wrk: HTTP load; openssh-client, curl, lftp: the clients.
apt-get install -y -qq --no-install-recommends \
    openssh-server openssh-client vsftpd nginx-light wrk curl lftp openssl procps util-linux >/dev/null
cargo build --release --locked
exec python3 bench/run.py "$@"
