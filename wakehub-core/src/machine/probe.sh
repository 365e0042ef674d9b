# WakeHub machine probe, protocol 1. Read-only but for apt's package lists (`apt-get
# update`, when root or password-less sudo allows it). POSIX sh; every tool optional.
#
# Output: `WAKEHUB-PROBE 1`, then sections: `@section NAME`, the command's output with each
# line prefixed by `|` (so no output can forge a frame), `@exit CODE`; `@end` last. A section
# whose tool is missing says `@missing WHAT` instead of running. The parser owns the meaning
# of each section; this script only gathers.
export LC_ALL=C LANG=C DEBIAN_FRONTEND=noninteractive
echo "WAKEHUB-PROBE 1"
section() {
    name=$1; shift
    echo "@section $name"
    out=$( ("$@") 2>&1 ); code=$?
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/|/'
    echo "@exit $code"
}
missing() { echo "@section $1"; echo "@missing $2"; }
have() { command -v "$1" >/dev/null 2>&1; }
# Root, or password-less sudo, for what needs it.
if [ "$(id -u)" = 0 ]; then as_root=""; elif have sudo && sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root=none; fi

section privilege echo "${as_root:-root}"
[ -r /etc/os-release ] && section os-release cat /etc/os-release || missing os-release /etc/os-release
section kernel uname -r
section arch uname -m
section boot-kernels sh -c 'ls -1 /boot 2>/dev/null | grep "^vmlinuz-" || true'
section uptime cat /proc/uptime
section loadavg cat /proc/loadavg
if have nproc; then section cpus nproc; else section cpus getconf _NPROCESSORS_ONLN; fi
section meminfo cat /proc/meminfo
section df sh -c 'df -PkT 2>/dev/null || df -Pk'

if have apt-get; then
    if [ "$as_root" = none ]; then
        missing apt-update "root or password-less sudo (the package lists were not refreshed)"
    else
        section apt-update $as_root apt-get update -q -o DPkg::Lock::Timeout=0
    fi
    section apt-full-upgrade apt-get -s -o Debug::NoLocking=1 full-upgrade
    section apt-upgrade apt-get -s -o Debug::NoLocking=1 upgrade
    section dpkg-audit dpkg --audit
    section apt-holds apt-mark showhold
    held=$(apt-mark showhold 2>/dev/null)
    if [ -n "$held" ]; then
        # shellcheck disable=SC2086
        section apt-held-policy apt-cache policy $held
    fi
else
    missing apt "apt-get (not a Debian-based system)"
fi
if [ -e /var/run/reboot-required ]; then
    section reboot-required sh -c 'cat /var/run/reboot-required.pkgs 2>/dev/null; true'
else
    echo "@section reboot-required"; echo "@exit 1"
fi
if have needrestart; then
    if [ "$as_root" = none ]; then
        missing needrestart "root or password-less sudo"
    else
        section needrestart $as_root needrestart -b -r l
    fi
else
    missing needrestart "needrestart (not installed)"
fi
if have docker; then
    section docker-version $as_root docker version --format '{{.Server.Version}}'
    section docker-ps $as_root docker ps -a --no-trunc --format '{{.Names}}\t{{.Image}}\t{{.State}}\t{{.Status}}'
    section docker-df $as_root docker system df --format '{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}'
else
    missing docker "docker (not installed)"
fi
if [ "${WAKEHUB_PROBE_HARDWARE:-0}" = 1 ]; then
    section cpuinfo sh -c 'grep -E "^(model name|physical id|core id|processor)" /proc/cpuinfo'
    if have lsblk; then section disks lsblk -b -d -n -P -o NAME,SIZE,TYPE,ROTA,MODEL; else missing disks lsblk; fi
    section net sh -c 'for i in /sys/class/net/*; do [ -e "$i" ] || continue; n=${i##*/}; printf "%s\t%s\t%s\t%s\n" "$n" "$(cat $i/address 2>/dev/null)" "$(cat $i/operstate 2>/dev/null)" "$(cat $i/speed 2>/dev/null)"; done'
    if have lspci; then section gpus sh -c 'lspci -mm | grep -E "\"(VGA compatible controller|3D controller|Display controller)\"" || true'; else missing gpus lspci; fi
fi
echo "@end"
