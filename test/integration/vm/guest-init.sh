#!/bin/sh
# PID 1 of the ontap test VM (see docs/testing.md, "How it works"). Runs under busybox sh.
#
# Stage 1 (the initramfs): mount proc, sys, devtmpfs; insmod the virtio/9p modules listed in
# /modules/order; mount the host's root (9p tag "hostroot", read-only) on /newroot; copy the job file
# (its host path is in $ontap_job, from the kernel command line) before a tmpfs hides /tmp; tmpfs
# on /newroot/run and /newroot/tmp; the job's shares (host directories such as the checkout, from
# the "shares" file beside the job) mounted at their own paths; switch_root into the host's root.
#
# Stage 2 (PID 1 in the host's root, still this script run by a copy of busybox in /run/ontap-vm):
# devpts, /dev/shm, lo up, modprobe the modules the tests need (PID 1's root is now the host's, so
# the kernel's own module auto-loading finds /sbin/modprobe too), run the job's command on ttyS1,
# report on ttyS2, power off.
#
# Channels: ttyS0 = kernel console and this script's messages; ttyS1 = the command's stdin/stdout/
# stderr; ttyS2 = status lines for the host ("ready UPTIME", "exit STATUS", "fail REASON").

BB=/bin/busybox
CONSOLE=/dev/ttyS0
OUT=/dev/ttyS1
STATUS=/dev/ttyS2

log() { echo "ontap-vm: [$($BB cut -d" " -f1 /proc/uptime)] $*" >"$CONSOLE"; }
report() { echo "$*" >"$STATUS"; }

# Something went wrong before the command ran: report, offer a shell if asked, power off.
die() {
  log "$*"
  report "fail $*"
  if [ "${ONTAP_VM_SHELL:-0}" = 1 ]; then
    echo "ontap-vm: $* -- debug shell (exit to power off)" >"$OUT"
    $BB setsid -c $BB sh <>"$OUT" >&0 2>&0
  fi
  $BB poweroff -f
  exit 1
}

stage1() {
  $BB mkdir -p /proc /sys /dev /newroot
  $BB mount -t proc proc /proc
  $BB mount -t sysfs sysfs /sys
  $BB mount -t devtmpfs devtmpfs /dev
  # ontap_shell=1 on the kernel command line: the job's ONTAP_VM_SHELL, known before the job is.
  ONTAP_VM_SHELL=${ontap_shell:-0}
  log "stage 1"
  while read -r module params; do
    # shellcheck disable=SC2086 # params are words
    $BB insmod "/modules/$module" $params || die "insmod $module failed"
  done </modules/order
  log "stage 1: modules loaded"
  $BB mount -t 9p -o "trans=virtio,version=9p2000.L,ro,msize=${ontap_msize:-524288},cache=${ontap_cache:-loose}" \
    hostroot /newroot || die "mounting the host's root over 9p failed"
  [ -n "${ontap_job:-}" ] && [ -f "/newroot$ontap_job" ] || die "job file ${ontap_job:-(none)} not found"
  $BB cp "/newroot$ontap_job" /job || die "copying the job file failed"
  # Beside the job, read before a tmpfs hides it: "TAG PATH" per line.
  if [ -f "/newroot${ontap_job%/*}/shares" ]; then $BB cp "/newroot${ontap_job%/*}/shares" /shares || die "copying the shares failed"; fi
  $BB mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || die "tmpfs on /run failed"
  $BB mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/tmp || die "tmpfs on /tmp failed"
  # The host directories the job needs (the checkout, the installed project), at their own paths:
  # they may be under /tmp or /run, which are the guest's own now.
  if [ -f /shares ]; then
    while read -r tag path; do
      $BB mkdir -p "/newroot$path" || die "mkdir $path for share $tag failed"
      $BB mount -t 9p -o "trans=virtio,version=9p2000.L,ro,msize=${ontap_msize:-524288},cache=${ontap_cache:-loose}" \
        "$tag" "/newroot$path" || die "mounting $path ($tag) over 9p failed"
    done </shares
  fi
  $BB mkdir -p /newroot/run/ontap-vm
  $BB cp /bin/busybox /init /job /newroot/run/ontap-vm/ || die "copying to /run/ontap-vm failed"
  log "stage 1: host root mounted, switching to it"
  for d in dev proc sys; do
    $BB mount --move "/$d" "/newroot/$d" || die "moving /$d failed"
  done
  exec $BB switch_root /newroot /run/ontap-vm/busybox sh /run/ontap-vm/init stage2
  # not reached unless switch_root failed (then /dev is gone: the console fd still works)
  echo "ontap-vm: switch_root failed" >&2
  $BB poweroff -f
}

stage2() {
  BB=/run/ontap-vm/busybox
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  export HOME=/root
  # The job: ONTAP_VM_* settings, exports of the passed-through environment, ONTAP_VM_ARGV.
  . /run/ontap-vm/job || die "reading the job failed"
  log "stage 2"
  $BB mkdir -p /dev/pts /dev/shm
  $BB mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts || die "devpts failed"
  $BB mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || die "tmpfs on /dev/shm failed"
  # Mounts made under / (ip netns add's bind mounts on /run/netns) propagate like on a normal host.
  $BB mount --make-rshared / || die "mount --make-rshared / failed"
  $BB hostname ontap-vm
  $BB ip link set lo up || die "lo up failed"
  # The host's kmod (not busybox's applet), as the kernel's own auto-loading uses.
  # One modprobe -a for all of them: every process start costs tens of ms under TCG.
  if [ -n "${ONTAP_VM_MODULES:-}" ]; then
    # shellcheck disable=SC2086 # a list of names
    "$($BB cat /proc/sys/kernel/modprobe)" -a $ONTAP_VM_MODULES || die "modprobe -a $ONTAP_VM_MODULES failed"
  fi
  log "stage 2: modules loaded: ${ONTAP_VM_MODULES:-}"
  if [ "${ONTAP_VM_WATCHDOG:-0}" -gt 0 ]; then
    # The host kills qemu on its own timeout; this covers a host runner that died without doing so.
    (
      $BB sleep "$ONTAP_VM_WATCHDOG"
      log "guest watchdog: ${ONTAP_VM_WATCHDOG}s passed, powering off"
      report "fail guest watchdog after ${ONTAP_VM_WATCHDOG}s"
      $BB poweroff -f
    ) &
  fi
  cd "${ONTAP_VM_CWD:-/}" || die "cd ${ONTAP_VM_CWD:-/} failed"
  eval "set -- ${ONTAP_VM_ARGV:-}"
  [ $# -gt 0 ] || die "the job has no command"
  # busybox sh would run its own applet for a command named like one (ip, sh, mount...): env looks
  # the command up on PATH, so the guest runs the host's programs.
  if [ -x /usr/bin/env ]; then set -- /usr/bin/env "$@"; fi
  log "stage 2: running the command"
  report "ready $($BB cut -d' ' -f1 /proc/uptime)"
  if [ "${ONTAP_VM_INTERACTIVE:-0}" = 1 ]; then
    $BB stty -F "$OUT" sane rows "${ONTAP_VM_ROWS:-24}" cols "${ONTAP_VM_COLS:-80}"
    $BB setsid -c "$@" <>"$OUT" >&0 2>&0
    status=$?
    if [ "${ONTAP_VM_SHELL:-0}" = 1 ]; then
      echo "ontap-vm: the command exited with status $status -- debug shell (exit to power off)" >"$OUT"
      if [ -x /bin/bash ]; then $BB setsid -c /bin/bash <>"$OUT" >&0 2>&0; else $BB setsid -c $BB sh <>"$OUT" >&0 2>&0; fi
    fi
  else
    # raw: the bytes reach the host unchanged (no \r\n, no echo).
    $BB stty -F "$OUT" raw -echo rows "${ONTAP_VM_ROWS:-24}" cols "${ONTAP_VM_COLS:-80}"
    "$@" </dev/null >"$OUT" 2>&1
    status=$?
  fi
  # Setting the line again waits until its output has been sent (TCSADRAIN) before powering off.
  $BB stty -F "$OUT" -echo
  log "the command exited with status $status"
  report "exit $status"
  $BB poweroff -f
}

case "${1:-stage1}" in
stage2) stage2 ;;
*) stage1 ;;
esac
