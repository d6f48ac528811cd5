;;; Stand-in for (gnu packages linux).
(define-module (gnu packages linux)
  #:use-module (guix gexp)
  #:export (util-linux))
(define util-linux (make-package "util-linux"))
