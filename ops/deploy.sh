#!/bin/sh
# analyst-deploy: the forced command of the CI deploy key (no shell, no sudoers).
# Install as /usr/local/sbin/analyst-deploy (root, 0755) and put the CI key in
# /root/.ssh/authorized_keys as:
#   command="/usr/local/sbin/analyst-deploy",restrict ssh-ed25519 AAAA... ci-deploy
# CI runs `ssh root@host SHA256 < analyst`: the new binary comes on stdin, its expected
# sha256 as the only argument (SSH_ORIGINAL_COMMAND). The script checks it, takes a backup of
# the state, installs the binary with analyst-install (ops/install.sh), and rolls back to the
# previous binary if /healthz does not answer.
set -eu

want=$(printf '%s' "${SSH_ORIGINAL_COMMAND:-}" | tr -cd '0-9a-f')
if [ ${#want} -ne 64 ]; then
	echo "analyst-deploy: expected the binary's sha256 as the command" >&2
	exit 2
fi
work=$(mktemp -d /var/tmp/analyst-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat > "$work/analyst"
got=$(sha256sum "$work/analyst" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
	echo "analyst-deploy: checksum mismatch ($got)" >&2
	exit 1
fi
chmod 0755 "$work/analyst"

backups=/var/backups/analyst
install -d -m 0700 "$backups"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [ -x /usr/local/bin/analyst ]; then
	cp /usr/local/bin/analyst "$backups/analyst.$stamp"
	# A few seconds of downtime buy an offline, state-only backup (Parquet can be synced again).
	systemctl stop analyst.service
	runuser -u analyst -- /usr/local/bin/analyst --home /var/lib/analyst backup --state-only "/var/lib/analyst/data/backup-$stamp.tar.gz"
	mv "/var/lib/analyst/data/backup-$stamp.tar.gz" "$backups/"
fi

/usr/local/sbin/analyst-install "$work/analyst" || true
for i in 1 2 3 4 5 6 7 8 9 10; do
	if curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
		echo "analyst-deploy: deployed $want"
		ls -1t "$backups"/analyst.* 2>/dev/null | tail -n +6 | xargs -r rm -f
		exit 0
	fi
	sleep 2
done
echo "analyst-deploy: /healthz does not answer; rolling back" >&2
if [ -f "$backups/analyst.$stamp" ]; then
	/usr/local/sbin/analyst-install "$backups/analyst.$stamp"
fi
exit 1
