#!/usr/bin/env bash
# Install variant-proxy as a systemd service.
#
#   scripts/install-service.sh system [--no-start] [--no-binary] [--root DIR]   (as root)
#   scripts/install-service.sh user   [--no-start] [--no-binary]
#
# system: unit  /etc/systemd/system/variant-proxy.service   (systemd/variant-proxy.service)
#         bin   /usr/local/bin/variant-proxy -> /opt/variant-proxy/bin/variant-proxy
#         conf  /etc/variant-proxy/router.yaml
#         state /var/lib/variant-proxy
# user:   unit  ~/.config/systemd/user/variant-proxy.service (systemd/variant-proxy.user.service)
#         bin   ~/.local/bin/variant-proxy -> ~/.local/share/variant-proxy/venv/bin/variant-proxy
#         conf  ~/.config/variant-proxy/router.yaml
#         state ~/.local/state/variant-proxy
#
# The binary: when it is missing, or it is the one this script installed before, the project is
# (re)installed into its own venv and linked into place. A binary from elsewhere (pipx, a distro
# package) is left alone. --no-binary skips this step entirely.
# The config: config/router.yaml is copied only when no config exists; an existing one is never
# overwritten. It is validated with `variant-proxy check` before the service is (re)started.
# --no-start installs and enables without starting; --root DIR installs into an image or chroot
# (system mode; enables offline with `systemctl --root`, starts nothing).
set -euo pipefail

usage() {
	sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-}
[[ $mode == system || $mode == user ]] || usage
shift
start=1
binary=1
root=
while (($#)); do
	case $1 in
	--no-start) start=0 ;;
	--no-binary) binary=0 ;;
	--root)
		[[ $# -ge 2 ]] || usage
		root=$(realpath -m "$2")
		shift
		;;
	--root=*) root=$(realpath -m "${1#--root=}") ;;
	*) usage ;;
	esac
	shift
done

say() { printf 'install-service: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

if [[ $mode == system ]]; then
	[[ -n $root || $(id -u) == 0 ]] || die "system mode needs root (try: sudo $0 system)"
	unit_src=$repo/systemd/variant-proxy.service
	unit_dir=$root/etc/systemd/system
	conf_dir=$root/etc/variant-proxy
	bin=$root/usr/local/bin/variant-proxy
	venv=$root/opt/variant-proxy
	systemctl=(systemctl)
	conf_mode=0644 # read by the service's DynamicUser; keep secrets in env vars, not here
else
	[[ -z $root ]] || die "--root is for system mode only"
	[[ $(id -u) != 0 ]] || say "warning: installing a user service for root"
	config_home=${XDG_CONFIG_HOME:-$HOME/.config}
	unit_src=$repo/systemd/variant-proxy.user.service
	unit_dir=$config_home/systemd/user
	conf_dir=$config_home/variant-proxy
	bin=$HOME/.local/bin/variant-proxy
	venv=${XDG_DATA_HOME:-$HOME/.local/share}/variant-proxy/venv
	systemctl=(systemctl --user)
	conf_mode=0600
fi
unit=$unit_dir/variant-proxy.service
config=$conf_dir/router.yaml

# 1. The binary. The system unit runs with ProtectHome=yes, so its binary must not live under
#    /home or /root: that is why it gets a venv of its own under /opt.
if ((binary)); then
	if [[ ! -e $bin || $(readlink -f "$bin") == "$venv/bin/variant-proxy" ]]; then
		python=${PYTHON:-python3}
		say "installing $repo into $venv"
		[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
		"$venv/bin/python" -m pip install --quiet --upgrade pip
		"$venv/bin/python" -m pip install --quiet --upgrade "$repo"
		mkdir -p "$(dirname "$bin")"
		# The link target is the path the service sees, without any --root prefix.
		ln -sfn "${venv#"$root"}/bin/variant-proxy" "$bin"
	else
		say "keeping $bin (not installed by this script)"
	fi
fi

# 2. The config: never overwrite one that exists.
mkdir -p "$conf_dir"
if [[ -e $config ]]; then
	say "keeping $config"
else
	install -m "$conf_mode" "$repo/config/router.yaml" "$config"
	say "created $config from config/router.yaml - edit it for your model servers"
fi
run_bin=$bin
[[ -z $root ]] || run_bin=$venv/bin/variant-proxy
if [[ -x $run_bin ]]; then
	# with the service's environment file, which may define the variables the config names
	(
		set -a
		# shellcheck disable=SC1091
		[[ ! -r $conf_dir/env ]] || . "$conf_dir/env"
		set +a
		"$run_bin" check --config "$config" >/dev/null
	) || die "$config is invalid (see above)"
else
	say "warning: $bin is not installed; ExecStart= will fail until it is"
fi

# 3. The unit.
mkdir -p "$unit_dir"
install -m 0644 "$unit_src" "$unit"
say "installed $unit"

# 4. Enable (and start).
if [[ -n $root ]]; then
	systemctl --root="$root" enable variant-proxy.service
	exit 0
fi
if ! "${systemctl[@]}" show-environment >/dev/null 2>&1; then
	say "no running systemd ${mode} manager: enable it later with: ${systemctl[*]} enable --now variant-proxy"
	exit 0
fi
"${systemctl[@]}" daemon-reload
"${systemctl[@]}" enable variant-proxy.service
if ((start)); then
	# restart, not start: an upgrade must pick up the new binary and unit.
	"${systemctl[@]}" restart variant-proxy.service
	"${systemctl[@]}" --no-pager --lines=5 status variant-proxy.service || true
fi
if [[ $mode == user ]] && [[ $(loginctl show-user "$USER" -P Linger 2>/dev/null) != yes ]]; then
	say "to keep it running while you are logged out: loginctl enable-linger $USER"
fi
logs="journalctl -u variant-proxy"
[[ $mode == system ]] || logs="journalctl --user -u variant-proxy"
say "logs: $logs -f    reload config: ${systemctl[*]} reload variant-proxy"
