;;; Stand-in for (gnu packages admin): the packages (gnu services ...) and ontap name.
(define-module (gnu packages admin)
  #:use-module (guix gexp)
  #:export (shadow shepherd))
(define shadow (make-package "shadow"))
(define shepherd (make-package "shepherd"))
