;;; Stand-in for (guix records): define-record-type* with `default' and `inherit'.
(define-module (guix records)
  #:use-module (srfi srfi-1)
  #:use-module (ice-9 match)
  #:export (define-record-type* record-fields-of record-type-name-of))

;; A record: #(%record TYPE-NAME ALIST).
(define (make-instance type alist) (vector '%record type alist))
(define (instance? x type) (and (vector? x) (= 3 (vector-length x)) (eq? (vector-ref x 0) '%record)
                                (eq? (vector-ref x 1) type)))
(define (record-type-name-of x) (vector-ref x 1))
(define (record-fields-of x) (vector-ref x 2))

;; SPECS: list of (name . default-thunk-or-#f); CLAUSES: list of (name . thunk), or
;; (%inherit . thunk) for `(inherit RECORD)'.
(define (instantiate type specs clauses)
  (let* ((base (match (assq '%inherit clauses)
                 ((_ . thunk) (record-fields-of (thunk)))
                 (#f '())))
         (given (filter (lambda (c) (not (eq? (car c) '%inherit))) clauses)))
    (for-each (lambda (c)
                (unless (assq (car c) specs)
                  (error (format #f "~a: no field ~a" type (car c))))
                (unless (eq? c (assq (car c) given))
                  (error (format #f "~a: duplicate field initializer ~a" type (car c)))))
              given)
    (make-instance
     type
     (map (lambda (spec)
            (let ((name (car spec)))
              (cons name
                    (cond ((assq name given) => (lambda (c) ((cdr c))))
                          ((assq name base) => cdr)
                          ((cdr spec) => (lambda (thunk) (thunk)))
                          (else (error (format #f "~a: missing field ~a" type name)))))))
          specs))))

(define-syntax clauses
  (syntax-rules (inherit)
    ((_) '())
    ((_ (inherit e) rest ...) (cons (cons '%inherit (lambda () e)) (clauses rest ...)))
    ((_ (field e) rest ...) (cons (cons 'field (lambda () e)) (clauses rest ...)))))

(define-syntax field-spec
  (syntax-rules (default)
    ((_ name) (cons 'name #f))
    ((_ name (default d) other ...) (cons 'name (lambda () d)))
    ((_ name other rest ...) (field-spec name rest ...))))

(define-syntax define-record-type*
  (lambda (s)
    (syntax-case s ()
      ((_ type ctor-syntax make pred (field accessor property ...) ...)
       ;; One specs variable per record type (a macro-introduced top-level name is not renamed).
       (with-syntax ((specs (datum->syntax #'type (symbol-append '% (syntax->datum #'type) '-field-specs))))
         #'(begin
             (define specs (list (field-spec field property ...) ...))
             (define (make . args) (error "positional constructor not supported by the stand-in"))
             (define (pred x) (instance? x 'type))
             (define (accessor x)
               (unless (pred x) (error (format #f "~a: not a ~a: ~s" 'accessor 'type x)))
               (cdr (assq 'field (record-fields-of x))))
             ...
             (define-syntax ctor-syntax
               (syntax-rules ()
                 ((_ c (... ...)) (instantiate 'type specs (clauses c (... ...))))))))))))
