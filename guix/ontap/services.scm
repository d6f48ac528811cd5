;;; ontap --- network devices for workloads, handed out over a unix socket
;;; SPDX-License-Identifier: GPL-3.0-or-later
;;;
;;; Guix System services for ontap: ontapd (one socket-activated Shepherd service per uplink),
;;; ontap-exec (a workload with its own device, in its own namespaces, as an unprivileged user
;;; holding only the capabilities it needs) and ontap-zone.  See docs/services.md, "Guix", for
;;; how to use this module and for what was and was not verified.
;;;
;;; Usage, with this directory on the load path (guix system -L /path/to/ontap/guix ...):
;;;
;;;   (use-modules (ontap services))
;;;   (services
;;;     (cons* (service ontap-exec-service-type
;;;                     (ontap-exec-configuration
;;;                       (port "wlp3s0") (type "ipvlan") (user "www")
;;;                       (caps "+net_bind_service") (name "arroyocc")
;;;                       (exec #~(list #$(file-append darkhttpd "/bin/darkhttpd") "/www"))))
;;;            %base-services))
;;;
;;; ontap-exec services extend ontapd-service-type with their uplink, so ontapd needs no
;;; declaration of its own unless its settings change.

(define-module (ontap services)
  #:use-module (gnu services)
  #:use-module (gnu services configuration)
  #:use-module (gnu services shepherd)
  #:use-module (gnu system shadow)
  #:use-module ((gnu packages admin) #:select (shadow))
  #:use-module ((gnu packages linux) #:select (util-linux))
  #:use-module (guix gexp)
  #:use-module (srfi srfi-1)
  #:use-module (ice-9 match)
  #:export (ontapd-configuration
            ontapd-configuration?
            ontapd-configuration-ontap
            ontapd-configuration-uplinks
            ontapd-configuration-group
            ontapd-configuration-socket-directory
            ontapd-configuration-max-devices
            ontapd-configuration-max-per-uid
            ontapd-configuration-request-timeout
            ontapd-configuration-family
            ontapd-configuration-verbosity
            ontapd-configuration-util-linux
            ontapd-service-type
            ontapd-provision

            ontap-exec-configuration
            ontap-exec-configuration?
            ontap-exec-configuration-ontap
            ontap-exec-configuration-port
            ontap-exec-configuration-type
            ontap-exec-configuration-name
            ontap-exec-configuration-user
            ontap-exec-configuration-group
            ontap-exec-configuration-caps
            ontap-exec-configuration-netns?
            ontap-exec-configuration-uts?
            ontap-exec-configuration-dhcp?
            ontap-exec-configuration-mode
            ontap-exec-configuration-exec
            ontap-exec-configuration-create-account?
            ontap-exec-configuration-requirement
            ontap-exec-configuration-socket-directory
            ontap-exec-configuration-util-linux
            ontap-exec-service-type
            ontap-exec-command

            ontap-zone-configuration
            ontap-zone-configuration?
            ontap-zone-configuration-ontap
            ontap-zone-configuration-arguments
            ontap-zone-configuration-mdns?
            ontap-zone-configuration-names
            ontap-zone-configuration-state-directory
            ontap-zone-configuration-requirement
            ontap-zone-service-type))

;;;
;;; Field types.
;;;

(define (ontap-package? value)
  ;; #f: take ontap and ontapd from the system profile (Guix has no ontap package yet).
  (or (not value) (file-like? value)))

(define (interface-name? value)
  ;; Linux interface names: 1-15 bytes, no "/", ":" or whitespace, not "." or "..".
  (and (string? value)
       (<= 1 (string-length value) 15)
       (not (member value '("." "..")))
       (not (string-any (lambda (c) (or (char=? c #\/) (char=? c #\:) (char-whitespace? c)))
                        value))))

(define list-of-interface-names? (list-of interface-name?))

(define (dns-label? value)
  ;; What ontap accepts as a workload name: 1-63 of a-z, 0-9 and "-", no "-" at either end.
  (and (string? value)
       (<= 1 (string-length value) 63)
       (string-every (char-set-union (char-set #\-) (string->char-set "abcdefghijklmnopqrstuvwxyz0123456789"))
                     value)
       (not (char=? (string-ref value 0) #\-))
       (not (char=? (string-ref value (- (string-length value) 1)) #\-))))

(define (ontap-type? value)
  (member value '("ipvlan" "ipvtap" "macvlan" "macvtap")))

(define (ontap-family? value)
  (member value '("ipvlan" "macvlan")))

(define (ontap-mode? value)
  (or (not value)
      (member value '("l2" "l3" "l3s" "bridge" "private" "vepa" "passthru"))))

(define (setpriv-capabilities? value)
  ;; setpriv's syntax: "" (none) or "+cap_a,+cap_b" with names as in capabilities(7), lower case.
  (and (string? value)
       (or (string-null? value)
           (every (lambda (item)
                    (and (> (string-length item) 1)
                         (char=? (string-ref item 0) #\+)
                         (string-every (char-set-union (char-set #\_) char-set:lower-case char-set:digit)
                                       (substring item 1))))
                  (string-split value #\,)))))

(define (zone-names? value)
  ;; ontap-zone --names: where a workload's names come from.
  (member value '("alias" "hostname" "both")))

(define (verbosity? value)
  (member value '("debug" "info" "warn" "error")))

(define (user-or-false? value)
  (or (not value) (string? value)))

(define (positive-integer? value)
  (and (exact-integer? value) (positive? value)))

(define (list-of-symbols? value)
  (and (list? value) (every symbol? value)))

;;;
;;; ontapd.
;;;

(define-configuration/no-serialization ontapd-configuration
  (ontap
   (ontap-package #f)
   "The package providing @command{ontapd} and @command{ontap} (in its @file{bin}).  When
@code{#f}, @file{/run/current-system/profile/bin/ontapd} is used: Guix has no ontap package yet,
so install ontap into the system profile or give a package built from this repository.")
  (uplinks
   (list-of-interface-names '())
   "The uplinks to serve, one Shepherd service @code{ontapd-@var{uplink}} each, with its socket
@file{@var{socket-directory}/port.@var{uplink}}.  Each @code{ontap-exec-service-type} service adds
its port here, so this list only needs the uplinks nothing else names.")
  (group
   (string "ontap")
   "The group that may ask for devices: a system group of this name is created, and the socket
directory is made @code{root:@var{group}}, mode 0750 (the Shepherd makes every socket it binds
mode 0666, so the directory is what restricts access).")
  (socket-directory
   (string "/run/ontap")
   "Where the sockets are.")
  (max-devices
   (positive-integer 4096)
   "Devices held at once by all callers (@option{--max-devices}).")
  (max-per-uid
   (positive-integer 256)
   "Devices held at once by one uid (@option{--max-per-uid}).")
  (request-timeout
   (positive-integer 5000)
   "Milliseconds a connection has to send its request (@option{--request-timeout}).")
  (family
   (ontap-family "ipvlan")
   "What the uplinks serve to callers other than root (@option{--family}): @code{\"ipvlan\"}
(ipvlan and ipvtap devices) or @code{\"macvlan\"} (macvlan and macvtap).  The kernel lets one
uplink carry one family, so this is the administrator's choice, not the first caller's.")
  (verbosity
   (verbosity "info")
   "Log threshold: @code{\"debug\"}, @code{\"info\"}, @code{\"warn\"} or @code{\"error\"}.")
  (util-linux
   (file-like util-linux)
   "The package providing @command{setpriv}, which starts ontapd holding only the capabilities it
needs (as CapabilityBoundingSet= in @file{systemd/ontapd@@.service})."))

(define %ontapd-capabilities
  ;; Why each one: see the comments in systemd/ontapd@.service.
  "+net_admin,+sys_admin,+mknod,+net_broadcast,+net_bind_service")

(define (ontapd-provision uplink)
  "The Shepherd service name of ontapd on UPLINK."
  (string->symbol (string-append "ontapd-" uplink)))

(define (ontap-program package name)
  (if package
      (file-append package "/bin/" name)
      (string-append "/run/current-system/profile/bin/" name)))

(define (ontapd-shepherd-service config uplink)
  (let ((socket (string-append (ontapd-configuration-socket-directory config) "/port." uplink)))
    (shepherd-service
     (documentation (string-append "ontapd: ipvlan, ipvtap, macvlan and macvtap devices on "
                                   uplink ", over " socket "."))
     (provision (list (ontapd-provision uplink)))
     (requirement '(user-processes))
     ;; Socket activation, as ontapd@.socket does it: the Shepherd binds the socket and starts
     ;; ontapd with it on the first connection (LISTEN_FDS, LISTEN_FDNAMES=port.UPLINK).
     (start #~(make-systemd-constructor
               (list #$(file-append (ontapd-configuration-util-linux config) "/bin/setpriv")
                     #$(string-append "--bounding-set=-all," %ontapd-capabilities)
                     "--inh-caps=-all" "--"
                     #$(ontap-program (ontapd-configuration-ontap config) "ontapd")
                     #$(string-append "--verbosity=" (ontapd-configuration-verbosity config))
                     #$(string-append "--max-devices="
                                      (number->string (ontapd-configuration-max-devices config)))
                     #$(string-append "--max-per-uid="
                                      (number->string (ontapd-configuration-max-per-uid config)))
                     #$(string-append "--request-timeout="
                                      (number->string (ontapd-configuration-request-timeout config)))
                     #$(string-append "--family=" (ontapd-configuration-family config))
                     #$uplink)
               (list (endpoint (make-socket-address AF_UNIX #$socket)
                               #:name #$(string-append "port." uplink)
                               #:style SOCK_SEQPACKET
                               #:socket-owner 0
                               #:socket-group #$(ontapd-configuration-group config)
                               #:socket-directory-permissions #o750))
               #:log-file #$(string-append "/var/log/ontapd-" uplink ".log")))
     (stop #~(make-systemd-destructor)))))

(define (ontapd-shepherd-services config)
  (map (lambda (uplink) (ontapd-shepherd-service config uplink))
       (ontapd-configuration-uplinks config)))

(define (ontapd-accounts config)
  (list (user-group
         (name (ontapd-configuration-group config))
         (system? #t))))

(define ontapd-service-type
  (service-type
   (name 'ontapd)
   (extensions
    (list (service-extension shepherd-root-service-type ontapd-shepherd-services)
          (service-extension account-service-type ontapd-accounts)))
   ;; Extensions are lists of uplinks (from ontap-exec services).
   (compose concatenate)
   (extend (lambda (config uplinks)
             (ontapd-configuration
              (inherit config)
              (uplinks (delete-duplicates
                        (append (ontapd-configuration-uplinks config) uplinks))))))
   (default-value (ontapd-configuration))
   (description
    "Run ontapd, which hands out ipvlan, ipvtap, macvlan and macvtap devices over the given
uplinks to local processes through one unix socket per uplink; a device lives as long as the
connection that asked for it.")))

;;;
;;; ontap-exec.
;;;

(define-configuration/no-serialization ontap-exec-configuration
  (ontap
   (ontap-package #f)
   "The package providing @command{ontap}, or @code{#f} for
@file{/run/current-system/profile/bin/ontap}.")
  (port
   (interface-name)
   "The uplink whose ontapd hands out the device, e.g. @code{\"wlp3s0\"}: ontapd is asked over
@file{@var{socket-directory}/port.@var{port}}, and this uplink is added to ontapd-service-type.")
  (type
   (ontap-type "ipvlan")
   "The device type: @code{\"ipvlan\"}, @code{\"macvlan\"} (the device appears in the workload's
network namespace), @code{\"ipvtap\"} or @code{\"macvtap\"} (the workload gets @file{/dev/tapN}
descriptors, see ontap(1)).")
  (name
   (dns-label)
   "The workload's name, a DNS label: the Shepherd service is @code{ontap-exec-@var{name}}; the
device's alias; the hostname in its UTS namespace; its stable IPv6 interface identifier (and MAC
address, for macvlan).")
  (user
   (string)
   "The user the workload runs as.")
  (group
   (user-or-false #f)
   "The group the workload runs as; @code{#f} for @var{user}'s primary group (looked up when the
service starts).")
  (caps
   (setpriv-capabilities "")
   "The capabilities the workload keeps, in setpriv(1) syntax, e.g.
@code{\"+net_bind_service\"} or @code{\"+net_bind_service,+net_raw\"}: they become its inheritable,
ambient and bounding sets; every other capability is dropped.  @code{\"\"} keeps none.")
  (netns?
   (boolean #t)
   "Whether the workload runs in a new network namespace holding only @code{lo} and its device
(@option{--netns}; ipvlan and macvlan only).")
  (uts?
   (boolean #t)
   "Whether the workload runs in a new UTS namespace whose hostname is @var{name}
(@option{--uts}).")
  (dhcp?
   (boolean #f)
   "Whether ontapd leases an IPv4 address for the workload's device from the LAN's DHCP server
and holds it while the workload runs (@option{--dhcp}; ipvlan and macvlan only).")
  (mode
   (ontap-mode #f)
   "The device mode (@option{--mode}), or @code{#f} for ontap's default (l2 bridge for ipvlan,
bridge for macvlan).")
  (exec
   (gexp)
   "The command, a G-expression evaluating to a list of strings, e.g.
@code{#~(list #$(file-append darkhttpd \"/bin/darkhttpd\") \"/www\")}.  It inherits the connection
to ontapd: the device lives exactly as long as this command.")
  (create-account?
   (boolean #t)
   "Whether to create @var{user} (and a group of the same name) as a system account.  Set to
@code{#f} when another service or the operating system declares it.")
  (requirement
   (list-of-symbols '())
   "Shepherd services to start before this one, besides @code{ontapd-@var{port}}.")
  (socket-directory
   (string "/run/ontap")
   "Where ontapd's sockets are.")
  (util-linux
   (file-like util-linux)
   "The package providing @command{setpriv}."))

(define (capability-sets caps)
  ;; setpriv(1) arguments giving exactly CAPS: "-all" first, then what is kept.
  (let ((sets (if (string-null? caps) "-all" (string-append "-all," caps))))
    (list (string-append "--inh-caps=" sets)
          (string-append "--ambient-caps=" sets)
          (string-append "--bounding-set=" sets))))

(define (ontap-exec-command config)
  "A G-expression evaluating to the command line of the workload of CONFIG: ontap, which asks for
the device and unshares the namespaces, then setpriv, which drops to the user and its capabilities,
then the workload; each replaces itself with the next."
  (let ((user (ontap-exec-configuration-user config))
        (group (ontap-exec-configuration-group config))
        (mode (ontap-exec-configuration-mode config)))
    #~(append
       (list #$(ontap-program (ontap-exec-configuration-ontap config) "ontap")
             "-t" #$(ontap-exec-configuration-type config)
             "-n" #$(ontap-exec-configuration-name config))
       '#$(append (if (ontap-exec-configuration-netns? config) '("--netns") '())
                  (if (ontap-exec-configuration-uts? config) '("--uts") '())
                  (if (ontap-exec-configuration-dhcp? config) '("--dhcp") '())
                  (if mode (list "--mode" mode) '()))
       (list #$(string-append (ontap-exec-configuration-socket-directory config)
                              "/port." (ontap-exec-configuration-port config))
             "--"
             #$(file-append (ontap-exec-configuration-util-linux config) "/bin/setpriv")
             #$(string-append "--reuid=" user)
             (string-append "--regid="
                            #$(or group
                                  #~(number->string (passwd:gid (getpwnam #$user)))))
             "--init-groups")
       '#$(capability-sets (ontap-exec-configuration-caps config))
       (list "--")
       #$(ontap-exec-configuration-exec config))))

(define (ontap-exec-shepherd-service config)
  (let ((name (ontap-exec-configuration-name config)))
    (list (shepherd-service
           (documentation (string-append "ontap workload " name ": "
                                         (ontap-exec-configuration-type config) " on "
                                         (ontap-exec-configuration-port config) "."))
           (provision (list (string->symbol (string-append "ontap-exec-" name))))
           (requirement (cons (ontapd-provision (ontap-exec-configuration-port config))
                              (ontap-exec-configuration-requirement config)))
           ;; Runs as root: ontap needs CAP_SYS_ADMIN for the namespaces; setpriv drops the rest.
           (start #~(make-forkexec-constructor
                     #$(ontap-exec-command config)
                     #:log-file #$(string-append "/var/log/ontap-exec-" name ".log")))
           (stop #~(make-kill-destructor))))))

(define (ontap-exec-accounts config)
  (let ((user (ontap-exec-configuration-user config)))
    (if (ontap-exec-configuration-create-account? config)
        (list (user-group
               (name user)
               (system? #t))
              (user-account
               (name user)
               (group user)
               (system? #t)
               (comment (string-append "ontap workload "
                                       (ontap-exec-configuration-name config)))
               (home-directory "/var/empty")
               (create-home-directory? #f)
               (shell (file-append shadow "/sbin/nologin"))))
        '())))

(define ontap-exec-service-type
  (service-type
   (name 'ontap-exec)
   (extensions
    (list (service-extension shepherd-root-service-type ontap-exec-shepherd-service)
          (service-extension account-service-type ontap-exec-accounts)
          (service-extension ontapd-service-type
                             (lambda (config) (list (ontap-exec-configuration-port config))))))
   (description
    "Run a command with its own ipvlan, ipvtap, macvlan or macvtap device from ontapd, optionally
in new network and UTS namespaces, as an unprivileged user holding only the given capabilities.")))

;;;
;;; ontap-zone.
;;;

(define-configuration/no-serialization ontap-zone-configuration
  (ontap
   (ontap-package #f)
   "The package providing @command{ontap-zone}, or @code{#f} for
@file{/run/current-system/profile/bin/ontap-zone}.")
  (arguments
   (list-of-strings '())
   "Arguments to @command{ontap-zone}: see ontap-zone(8).")
  (mdns?
   (boolean #f)
   "Whether ontap-zone also answers for @var{NAME}@code{.local} by multicast DNS on every
workload's links (@option{--mdns}); with it, @option{--domain} in @code{arguments} is optional.")
  (names
   (zone-names "both")
   "Where the workloads' names come from (@option{--names}): @code{\"alias\"}, the name a
workload was started with (@command{ontap -n}); @code{\"hostname\"}, the host name of a UTS
namespace its processes are in; or @code{\"both\"}.")
  (state-directory
   (string "/var/lib/ontap-zone")
   "A directory for ontap-zone's state, created at activation (mode 0755), passed to it as
@env{STATE_DIRECTORY} as systemd's StateDirectory= does.")
  (requirement
   (list-of-symbols '(networking))
   "Shepherd services to start before ontap-zone."))

(define (ontap-zone-shepherd-service config)
  (list (shepherd-service
         (documentation "ontap-zone: DNS names for named ontap workloads.")
         (provision '(ontap-zone))
         (requirement (ontap-zone-configuration-requirement config))
         (start #~(make-forkexec-constructor
                   (cons #$(ontap-program (ontap-zone-configuration-ontap config) "ontap-zone")
                         '#$(append (if (ontap-zone-configuration-mdns? config) '("--mdns") '())
                                    (list (string-append "--names=" (ontap-zone-configuration-names config)))
                                    (ontap-zone-configuration-arguments config)))
                   #:environment-variables
                   (cons #$(string-append "STATE_DIRECTORY="
                                          (ontap-zone-configuration-state-directory config))
                         (default-environment-variables))
                   #:log-file "/var/log/ontap-zone.log"))
         (stop #~(make-kill-destructor)))))

(define (ontap-zone-activation config)
  #~(begin
      (use-modules (guix build utils))
      (mkdir-p #$(ontap-zone-configuration-state-directory config))
      (chmod #$(ontap-zone-configuration-state-directory config) #o755)))

(define ontap-zone-service-type
  (service-type
   (name 'ontap-zone)
   (extensions
    (list (service-extension shepherd-root-service-type ontap-zone-shepherd-service)
          (service-extension activation-service-type ontap-zone-activation)))
   (default-value (ontap-zone-configuration))
   (description
    "Run ontap-zone, which publishes the names of named ontap workloads in DNS.")))
