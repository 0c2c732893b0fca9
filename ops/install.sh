#!/bin/sh
# Installs the AI Data Analyst server from its binary on Debian or Ubuntu:
#   sudo sh install.sh ./analyst [--init-flags...]
# It creates the system user "analyst" (no login shell, no home outside its state folder),
# installs the binary to /usr/local/bin, the systemd unit, and the instance folder
# /var/lib/analyst (mode 0750). If the folder has no config yet, any further arguments are
# handed to `analyst init --non-interactive` (e.g. --demo). Run it again to upgrade: the
# binary is replaced, the service restarted, and the store migrates itself at start.
# No analyst gets a Linux account and nothing is added to sudoers.
set -eu

BIN=${1:?usage: install.sh PATH/TO/analyst [analyst init flags...]}
shift
HOME_DIR=/var/lib/analyst
UNIT=/etc/systemd/system/analyst.service

if [ "$(id -u)" -ne 0 ]; then
	echo "install.sh: run as root (sudo)" >&2
	exit 1
fi
if [ ! -x "$BIN" ]; then
	echo "install.sh: $BIN is not an executable" >&2
	exit 1
fi
"$BIN" --help >/dev/null 2>&1 || [ $? -eq 2 ] || { echo "install.sh: $BIN does not run here" >&2; exit 1; }

if ! getent group analyst >/dev/null; then
	groupadd --system analyst
fi
if ! id analyst >/dev/null 2>&1; then
	useradd --system --gid analyst --home-dir "$HOME_DIR" --no-create-home \
		--shell /usr/sbin/nologin --comment "AI Data Analyst" analyst
fi

install -d -o analyst -g analyst -m 0750 "$HOME_DIR"
install -o root -g root -m 0755 "$BIN" /usr/local/bin/analyst.new
mv -f /usr/local/bin/analyst.new /usr/local/bin/analyst

/usr/local/bin/analyst ops unit > "$UNIT.new"
chmod 0644 "$UNIT.new"
mv -f "$UNIT.new" "$UNIT"
systemctl daemon-reload

if [ ! -f "$HOME_DIR/config/instance.yaml" ] && [ $# -gt 0 ]; then
	runuser -u analyst -- /usr/local/bin/analyst --home "$HOME_DIR" init --non-interactive "$@"
fi
if [ -f "$HOME_DIR/.env" ]; then
	chown analyst:analyst "$HOME_DIR/.env"
	chmod 0600 "$HOME_DIR/.env"
fi

systemctl enable analyst.service >/dev/null
systemctl restart analyst.service
sleep 2
if systemctl is-active --quiet analyst.service; then
	echo "analyst is running. Check it with:"
	echo "  sudo -u analyst analyst --home $HOME_DIR doctor"
	echo "  journalctl -u analyst -f"
else
	echo "analyst did not start; see: journalctl -u analyst -n 50" >&2
	exit 1
fi
