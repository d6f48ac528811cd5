/** Exit codes from sysexits.h, the ones ontap's commands use. */
export const ExitCode = {
  ok: 0,
  usage: 64, // EX_USAGE: bad arguments
  dataErr: 65, // EX_DATAERR
  noInput: 66, // EX_NOINPUT
  unavailable: 69, // EX_UNAVAILABLE: daemon unreachable, uplink missing
  software: 70, // EX_SOFTWARE: internal failure
  osErr: 71, // EX_OSERR: a system call failed
  cantCreate: 73, // EX_CANTCREAT
  tempFail: 75, // EX_TEMPFAIL
  protocol: 76, // EX_PROTOCOL: the daemon answered something we cannot read
  noPerm: 77, // EX_NOPERM: the daemon refused
  config: 78, // EX_CONFIG
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
