;;; Evaluates guix/ontap/services.scm against the stand-in in guix-stand-in/ and prints one JSON
;;; object for test/integration/service-guix.test.ts:
;;;
;;;   guile --no-auto-compile -L test/helpers/guix-stand-in -L guix test/helpers/guix-check.scm \
;;;     ONTAP-DIR UTIL-LINUX-DIR SOCKET-DIR UPLINK TYPE USER GROUP CAPS -- COMMAND...
;;;
;;; "fields": every configuration's fields (name, type, documentation, default);
;;; "example": what the README's example configuration turns into (Shepherd services with their
;;;   start G-expressions lowered, accounts, the uplinks it adds to ontapd);
;;; "invalid": whether each wrong value is refused; "valid": whether a valid one is accepted;
;;; "run": the commands the Shepherd would run for a configuration built from the arguments, with
;;;   the ontap package at ONTAP-DIR and util-linux at UTIL-LINUX-DIR: ontapd's (and its socket
;;;   endpoint) and the workload's, for the test to run them.
(use-modules (ontap services)
             (gnu services)
             (gnu services configuration)
             (gnu services shepherd)
             (gnu system shadow)
             (guix gexp)
             (srfi srfi-1)
             (ice-9 match))

(define (json x)
  (cond ((eq? x #t) "true")
        ((eq? x #f) "false")
        ((null? x) "[]")
        ((string? x) (with-output-to-string (lambda () (write x))))
        ((symbol? x) (json (symbol->string x)))
        ((number? x) (number->string x))
        ((and (pair? x) (pair? (car x)) (symbol? (caar x)))
         (string-append "{" (string-join (map (lambda (p) (string-append (json (car p)) ":" (json (cdr p)))) x) ",") "}"))
        ((list? x) (string-append "[" (string-join (map json x) ",") "]"))
        (else (json (with-output-to-string (lambda () (write x)))))))

(define (fields-of stem)
  (map (lambda (f)
         `((name . ,(configuration-field-name f))
           (type . ,(configuration-field-type f))
           (documentation . ,(configuration-field-documentation f))
           (default . ,(catch #t
                         (lambda () (with-output-to-string
                                      (lambda () (write ((configuration-field-default-value-thunk f))))))
                         (lambda _ #f)))))
       (module-ref (resolve-module '(ontap services)) (symbol-append stem '-fields))))

(define (extension-value service target)
  "What SERVICE contributes to TARGET, as Guix computes it for one service."
  (let ((ext (find (lambda (e) (eq? (service-extension-target e) target))
                   (service-type-extensions (service-kind service)))))
    (and ext ((service-extension-compute ext) (service-value service)))))

(define (shepherd->alist s)
  `((provision . ,(shepherd-service-provision s))
    (requirement . ,(shepherd-service-requirement s))
    (documentation . ,(shepherd-service-documentation s))
    (start . ,(with-output-to-string (lambda () (write (gexp->sexp (shepherd-service-start s))))))
    (stop . ,(with-output-to-string (lambda () (write (gexp->sexp (shepherd-service-stop s))))))))

(define (account->alist a)
  (if (user-account? a)
      `((kind . "user") (name . ,(user-account-name a)) (group . ,(user-account-group a))
        (system . ,(user-account-system? a)) (home . ,(user-account-home-directory a))
        (shell . ,(gexp->sexp (user-account-shell a))))
      `((kind . "group") (name . ,(user-group-name a)) (system . ,(user-group-system? a)))))

(define (ontapd-for exec)
  "The ontapd service an ontap-exec service EXEC brings in: the default, extended as Guix would."
  (let ((type ontapd-service-type))
    (service type ((service-type-extend type) (service-type-default-value type)
                   ((service-type-compose type) (list (extension-value exec type)))))))

(define (describe service)
  `((shepherd . ,(map shepherd->alist (extension-value service shepherd-root-service-type)))
    (accounts . ,(map account->alist (or (extension-value service account-service-type) '())))))

;;; The README's example, with a stand-in darkhttpd package.
(define darkhttpd (make-package "darkhttpd"))
(define example
  (service ontap-exec-service-type
           (ontap-exec-configuration
            (port "wlp3s0")
            (type "ipvlan")
            (user "www")
            (caps "+net_bind_service")
            (name "arroyocc")
            (dhcp? #t)
            (exec #~(list #$(file-append darkhttpd "/bin/darkhttpd") "/www")))))

(define (refuses? thunk)
  (catch #t (lambda () (thunk) #f) (lambda _ #t)))

(define valid-exec
  (ontap-exec-configuration (port "eth0") (user "www") (name "web") (exec #~(list "true"))))

(define-syntax-rule (exec-with clause ...)
  (lambda () (ontap-exec-configuration (inherit valid-exec) clause ...)))

(define invalid
  `((port . ,(refuses? (exec-with (port "eth0/x"))))
    (port-too-long . ,(refuses? (exec-with (port "a-very-long-interface"))))
    (type . ,(refuses? (exec-with (type "vxlan"))))
    (name . ,(refuses? (exec-with (name "Arroyo_CC"))))
    (name-leading-dash . ,(refuses? (exec-with (name "-web"))))
    (caps . ,(refuses? (exec-with (caps "net_bind_service"))))
    (caps-list . ,(refuses? (exec-with (caps "+net_bind_service,+NET_RAW"))))
    (mode . ,(refuses? (exec-with (mode "turbo"))))
    (dhcp . ,(refuses? (exec-with (dhcp? "yes"))))
    (exec . ,(refuses? (exec-with (exec '("true")))))
    (missing-user . ,(refuses? (lambda () (ontap-exec-configuration (port "eth0") (name "web") (exec #~(list "true"))))))
    (ontapd-uplinks . ,(refuses? (lambda () (ontapd-configuration (uplinks '("eth0" "bad/name"))))))
    (ontapd-verbosity . ,(refuses? (lambda () (ontapd-configuration (verbosity "loud")))))
    (ontapd-family . ,(refuses? (lambda () (ontapd-configuration (family "dummy")))))
    (zone-names . ,(refuses? (lambda () (ontap-zone-configuration (names "dns")))))))

(define valid
  (not (refuses? (exec-with (caps "+net_bind_service,+net_raw") (mode "l2") (group "www") (dhcp? #t)))))

;;; The commands for the test to run.
(define (evaluate sexp)
  "Evaluates a lowered start G-expression with the Shepherd's procedures replaced by recorders."
  (let ((m (make-fresh-user-module)))
    (module-define! m 'make-forkexec-constructor (lambda (command . options) `((command . ,command))))
    (module-define! m 'make-systemd-constructor
                    (lambda (command endpoints . options) `((command . ,command) (endpoints . ,endpoints))))
    (module-define! m 'make-socket-address (lambda (family path) path))
    (module-define! m 'endpoint
                    (lambda* (address #:key name style socket-owner socket-group socket-directory-permissions)
                      `((path . ,address) (name . ,name) (style . ,style) (owner . ,socket-owner)
                        (group . ,socket-group) (directory-permissions . ,socket-directory-permissions))))
    (module-define! m 'default-environment-variables (lambda () '()))
    (eval sexp m)))

(define run
  (match (command-line)
    ((_ ontap-dir util-linux-dir socket-dir uplink type user group caps "--" command ...)
     (parameterize ((%store-directories `(("ontap" . ,ontap-dir) ("util-linux" . ,util-linux-dir))))
       (let* ((exec (service ontap-exec-service-type
                             (ontap-exec-configuration
                              (ontap (make-package "ontap"))
                              (util-linux (make-package "util-linux"))
                              (port uplink) (type type) (user user) (group group) (caps caps)
                              (name "arroyocc") (socket-directory socket-dir) (create-account? #f)
                              (exec #~(list #$@command)))))
              (ontapd (service ontapd-service-type
                               (ontapd-configuration
                                (ontap (make-package "ontap"))
                                (util-linux (make-package "util-linux"))
                                (socket-directory socket-dir)
                                (uplinks (list uplink)))))
              (start (lambda (s) (evaluate (gexp->sexp (shepherd-service-start s))))))
         `((ontapd . ,(start (car (extension-value ontapd shepherd-root-service-type))))
           (exec . ,(start (car (extension-value exec shepherd-root-service-type))))))))
    (_ #f)))

(display
 (json
  `((fields . ((ontapd-configuration . ,(fields-of 'ontapd-configuration))
               (ontap-exec-configuration . ,(fields-of 'ontap-exec-configuration))
               (ontap-zone-configuration . ,(fields-of 'ontap-zone-configuration))))
    (example . ((exec . ,(describe example))
                (ontapd . ,(describe (ontapd-for example)))
                (zone . ,(describe (service ontap-zone-service-type)))
                (zone-mdns . ,(describe (service ontap-zone-service-type
                                                 (ontap-zone-configuration (mdns? #t) (arguments '("--verbosity=debug"))))))
                (zone-alias . ,(describe (service ontap-zone-service-type
                                                  (ontap-zone-configuration (names "alias")))))))
    (invalid . ,invalid)
    (valid . ,valid)
    (run . ,run))))
(newline)
