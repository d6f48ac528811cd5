;;; Stand-in for (guix gexp): G-expressions as data, lowered to S-expressions by gexp->sexp.
(define-module (guix gexp)
  #:use-module (srfi srfi-1)
  #:use-module (ice-9 match)
  #:export (gexp gexp? ungexp ungexp-splicing make-gexp gexp-sexp
            file-append file-like? make-package package-name-of
            gexp->sexp %store-directories with-imported-modules))

(define (make-gexp sexp) (vector '%gexp sexp))
(define (gexp? x) (and (vector? x) (= 2 (vector-length x)) (eq? (vector-ref x 0) '%gexp)))
(define (gexp-sexp g) (vector-ref g 1))

;; Packages and file-append objects are the file-like objects here.
(define (make-package name) (vector '%package name))
(define (package? x) (and (vector? x) (= 2 (vector-length x)) (eq? (vector-ref x 0) '%package)))
(define (package-name-of p) (vector-ref p 1))
(define (file-append base . suffixes) (vector '%file-append base suffixes))
(define (file-append? x) (and (vector? x) (= 3 (vector-length x)) (eq? (vector-ref x 0) '%file-append)))
(define (file-like? x) (or (package? x) (file-append? x)))

;; Where a package "is": an alist of package name -> directory (a test may point them at the
;; host's own programs); others are /gnu/store/...-NAME.
(define %store-directories (make-parameter '()))

(define (lower x)
  (cond ((gexp? x) (lower (gexp-sexp x)))
        ((package? x)
         (or (assoc-ref (%store-directories) (package-name-of x))
             (string-append "/gnu/store/00000000000000000000000000000000-" (package-name-of x))))
        ((file-append? x) (apply string-append (lower (vector-ref x 1)) (vector-ref x 2)))
        ((pair? x) (cons (lower (car x)) (lower (cdr x))))
        (else x)))

(define (gexp->sexp g) (lower g))

;; #~ #$ #$@ as Guix reads them.
(read-hash-extend #\~ (lambda (chr port) (list 'gexp (read port))))
(read-hash-extend #\$ (lambda (chr port)
                        (if (eqv? (peek-char port) #\@)
                            (begin (read-char port) (list 'ungexp-splicing (read port)))
                            (list 'ungexp (read port)))))

(define-syntax ungexp (lambda (s) (syntax-violation 'ungexp "outside of gexp" s)))
(define-syntax ungexp-splicing (lambda (s) (syntax-violation 'ungexp-splicing "outside of gexp" s)))

;; (gexp E): E quasi-quoted, each (ungexp X) replaced by X's value, each (ungexp-splicing X)
;; by the elements of X's value.
(define-syntax gexp
  (lambda (s)
    (define (walk x)
      (syntax-case x (ungexp ungexp-splicing)
        ((ungexp e) #'(unquote e))
        (((ungexp-splicing e) . rest) #`((unquote-splicing e) . #,(walk #'rest)))
        ((a . b) #`(#,(walk #'a) . #,(walk #'b)))
        (other #'other)))
    (syntax-case s ()
      ((_ e) #`(make-gexp (quasiquote #,(walk #'e)))))))

(define-syntax-rule (with-imported-modules modules body ...) (begin body ...))
