#!/usr/bin/env bash
# Benchmarks wharf against the real peers on this machine, side by side in one
# run: OpenSSH's internal-sftp, vsftpd (FTPS), nginx (sendfile). Run by hand, as
# root (it installs Debian packages and creates a throwaway system user):
#
#   bash bench/run.sh                 # 1 GiB files, 5 repetitions
#   bash bench/run.sh --size 256M --reps 3
#   bash bench/run.sh --cases small,s3 --reps 5    # some cases only (printed, not written)
#   bash bench/run.sh --cases sessions --sessions 64 # 64 concurrent SFTP sessions
#   bash bench/run.sh --max-load 0.5 --load-wait 300 # a stricter load gate
#
# Results (throughput and server CPU per GiB for wharf and the peer, medians with
# min-max, wharf ÷ peer ratios, load before/after) go to docs/benchmarks.md. A
# failed transfer (any client's exit status, an upload's stored size) makes its
# row say FAILED and the run exit non-zero; see bench/run.py for what is checked.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh needs root (apt-get, a system user for sshd and vsftpd)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# openssh-server: sshd with internal-sftp; vsftpd: FTPS; nginx-light: static files
# with sendfile; wrk: HTTP load; openssh-client, curl, lftp: the clients; eatmydata:
# the --no-fsync experiment.
apt-get install -y -qq --no-install-recommends \
    openssh-server openssh-client vsftpd nginx-light wrk curl lftp openssl procps util-linux eatmydata >/dev/null
# s3s-fs: a small S3-compatible server over a folder (Rust; far faster than moto,
# though it still bounds the S3 case, see docs/benchmarks.md). 0.14.1 builds with
# this toolchain; later versions need a newer rustc.
if ! command -v s3s-fs >/dev/null && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
    cargo install --locked s3s-fs --version 0.14.1 --features binary
fi
# boto3 signs the URLs with which curl reaches the S3 server directly.
python3 -c "import boto3" 2>/dev/null || python3 -m pip install -q boto3
cargo build --release --locked
exec python3 bench/run.py "$@"
