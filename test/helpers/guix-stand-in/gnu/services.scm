;;; Stand-in for (gnu services): service types, extensions, services.
(define-module (gnu services)
  #:use-module (guix records)
  #:export (service-type service-type? service-type-name service-type-extensions
            service-type-compose service-type-extend service-type-default-value
            service-type-description
            service-extension service-extension? service-extension-target
            service-extension-compute
            service service? service-kind service-value simple-service
            activation-service-type profile-service-type
            etc-service-type boot-service-type))

(define-record-type* <service-type> service-type make-service-type service-type?
  (name service-type-name)
  (extensions service-type-extensions)
  (compose service-type-compose (default #f))
  (extend service-type-extend (default #f))
  (default-value service-type-default-value (default '%no-default))
  (description service-type-description (default #f)))

(define-record-type* <service-extension> %service-extension make-service-extension
  service-extension?
  (target service-extension-target)
  (compute service-extension-compute))

(define (service-extension target compute)
  (%service-extension (target target) (compute compute)))

(define (service-kind s) (car s))
(define (service-value s) (cdr s))
(define (service? s) (and (pair? s) (service-type? (car s))))
(define* (service type #:optional (value (service-type-default-value type)))
  (when (eq? value '%no-default)
    (error (format #f "~a has no default value" (service-type-name type))))
  (cons type value))
(define (simple-service name target value)
  (service (service-type (name name) (extensions (list (service-extension target (const value)))))
           value))

(define-syntax-rule (define-system-type type)
  (define type (service-type (name 'type) (extensions '()))))
(define-system-type activation-service-type)
(define-system-type profile-service-type)
(define-system-type etc-service-type)
(define-system-type boot-service-type)
