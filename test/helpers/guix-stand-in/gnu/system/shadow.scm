;;; Stand-in for (gnu system shadow), which re-exports (gnu system accounts)'s records and
;;; defines account-service-type.
(define-module (gnu system shadow)
  #:use-module (guix records)
  #:use-module (gnu services)
  #:export (account-service-type
            user-account user-account? user-account-name user-account-password
            user-account-uid user-account-group user-account-supplementary-groups
            user-account-comment user-account-home-directory
            user-account-create-home-directory? user-account-shell user-account-system?
            user-group user-group? user-group-name user-group-password user-group-id
            user-group-system?))

(define-record-type* <user-account> user-account make-user-account user-account?
  (name user-account-name)
  (password user-account-password (default #f))
  (uid user-account-uid (default #f))
  (group user-account-group)
  (supplementary-groups user-account-supplementary-groups (default '()))
  (comment user-account-comment (default ""))
  (home-directory user-account-home-directory (default "/home/user"))
  (create-home-directory? user-account-create-home-directory? (default #t))
  (shell user-account-shell (default "/bin/sh"))
  (system? user-account-system? (default #f)))

(define-record-type* <user-group> user-group make-user-group user-group?
  (name user-group-name)
  (password user-group-password (default #f))
  (id user-group-id (default #f))
  (system? user-group-system? (default #f)))

(define account-service-type
  (service-type (name 'account) (extensions '())))
