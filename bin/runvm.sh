#!/bin/sh
# runvm -- run qemu-system-x86_64 with its NIC on its own ipvtap (or macvtap) from ontapd.
#
#   runvm [-t ipvtap|macvtap] [-m QUEUES] [-n NAME] [-v] UPLINK [QEMU-ARG...]
#
# Asks ontapd's /run/ontap/port.UPLINK for a tap device through ontap(1), which then execs
# qemu with the tap's descriptors:
#   one queue:  -netdev tap,id=n0,fd=FD0 -device virtio-net-pci,netdev=n0,mac=HWADDR
#   N queues:   -netdev tap,id=n0,fds=FD0:...:FDN-1 -device virtio-net-pci,...,mq=on,vectors=2N+2
# The device lives exactly as long as qemu. POSIX sh; bin/runvm is the same program in execline.
# Environment: ONTAP (the ontap command, split at spaces; default "ontap"), QEMU (default
# qemu-system-x86_64), ONTAP_SOCKET_DIR (default /run/ontap). See runvm(1): docs/runvm.1.
set -eu

usage() {
	cat <<'USAGE'
Usage: runvm [-t ipvtap|macvtap] [-m QUEUES] [-n NAME] [-v] UPLINK [QEMU-ARG...]
Run qemu with a virtio NIC on its own tap device from ontapd (ontap -t TYPE ... port.UPLINK).
  -t TYPE    ipvtap (default: shares UPLINK's MAC, works over Wi-Fi) or macvtap (own MAC)
  -m QUEUES  queues, one descriptor each (1-16, default 1): multi-queue virtio-net
  -n NAME    workload name: device alias, and a stable MAC for macvtap
  -v         vhost=on (qemu opens /dev/vhost-net, once per queue)
  -h         show this help
USAGE
}

type=ipvtap queues=1 name='' vhost=''
while getopts t:m:n:vh opt; do
	case $opt in
	t) type=$OPTARG ;;
	m) queues=$OPTARG ;;
	n) name=$OPTARG ;;
	v) vhost=,vhost=on ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 64 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then
	usage >&2
	exit 64
fi
uplink=$1
shift
case $type in
ipvtap | macvtap) ;;
*) echo "runvm: -t must be ipvtap or macvtap, not \"$type\"" >&2; exit 64 ;;
esac

# ontap checks QUEUES and NAME. Its COMMAND is sh, which builds qemu's NIC arguments from
# what ontap put in the environment and execs qemu: one pid from here to qemu.
# shellcheck disable=SC2016,SC2086
exec ${ONTAP:-ontap} -t "$type" -m "$queues" ${name:+--name="$name"} \
	"${ONTAP_SOCKET_DIR:-/run/ontap}/port.$uplink" -- \
	sh -c '
		qemu=$1 vhost=$2
		shift 2
		if [ "$ONTAP_QUEUES" -eq 1 ]; then
			netdev=tap,id=n0,fd=$ONTAP_FD0$vhost
			device=virtio-net-pci,netdev=n0,mac=$ONTAP_HWADDR
		else
			fds=$ONTAP_FD0 i=1
			while [ "$i" -lt "$ONTAP_QUEUES" ]; do
				eval "fds=\$fds:\$ONTAP_FD$i"
				i=$((i + 1))
			done
			netdev=tap,id=n0,fds=$fds$vhost
			device=virtio-net-pci,netdev=n0,mac=$ONTAP_HWADDR,mq=on,vectors=$((2 * ONTAP_QUEUES + 2))
		fi
		exec "$qemu" -netdev "$netdev" -device "$device" "$@"
	' runvm "${QEMU:-qemu-system-x86_64}" "$vhost" "$@"
