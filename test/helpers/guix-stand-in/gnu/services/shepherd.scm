;;; Stand-in for (gnu services shepherd): the shepherd-service record and the root service type.
(define-module (gnu services shepherd)
  #:use-module (guix records)
  #:use-module (guix gexp)
  #:use-module (gnu services)
  #:export (shepherd-root-service-type shepherd-service shepherd-service?
            shepherd-service-documentation shepherd-service-provision
            shepherd-service-requirement shepherd-service-one-shot? shepherd-service-respawn?
            shepherd-service-respawn-limit shepherd-service-respawn-delay
            shepherd-service-free-form shepherd-service-start shepherd-service-stop
            shepherd-service-actions shepherd-service-auto-start? shepherd-service-modules
            shepherd-action shepherd-action? %default-modules))

(define %default-modules
  '((shepherd service) ((guix build utils) #:hide (delete)) (guix build syscalls)))

;; Fields and defaults as in Guix (2025).
(define-record-type* <shepherd-service> shepherd-service make-shepherd-service shepherd-service?
  (documentation shepherd-service-documentation (default "[No documentation.]"))
  (provision shepherd-service-provision)
  (requirement shepherd-service-requirement (default '()))
  (one-shot? shepherd-service-one-shot? (default #f))
  (respawn? shepherd-service-respawn? (default #t))
  (respawn-limit shepherd-service-respawn-limit (default #f))
  (respawn-delay shepherd-service-respawn-delay (default #f))
  (free-form shepherd-service-free-form (default #f))
  (start shepherd-service-start (default #~(const #t)))
  (stop shepherd-service-stop (default #~(const #f)))
  (actions shepherd-service-actions (default '()))
  (auto-start? shepherd-service-auto-start? (default #t))
  (modules shepherd-service-modules (default %default-modules)))

(define-record-type* <shepherd-action> shepherd-action make-shepherd-action shepherd-action?
  (name shepherd-action-name)
  (procedure shepherd-action-procedure)
  (documentation shepherd-action-documentation))

(define shepherd-root-service-type
  (service-type (name 'shepherd-root) (extensions '())))
