;;; Stand-in for (gnu services configuration): define-configuration without serialization.
(define-module (gnu services configuration)
  #:use-module (guix records)
  #:use-module (srfi srfi-1)
  #:export (configuration-field configuration-field? configuration-field-name
            configuration-field-type configuration-field-documentation
            configuration-field-default-value-thunk configuration-field-getter
            configuration-field-predicate
            define-configuration define-configuration/no-serialization no-serialization
            list-of list-of-strings? validate-configuration))

(define-record-type* <configuration-field>
  configuration-field make-configuration-field configuration-field?
  (name configuration-field-name)
  (type configuration-field-type)
  (getter configuration-field-getter)
  (predicate configuration-field-predicate)
  (default-value-thunk configuration-field-default-value-thunk)
  (documentation configuration-field-documentation))

(define (validate-configuration config fields)
  (for-each (lambda (field)
              (let ((value ((configuration-field-getter field) config)))
                (unless ((configuration-field-predicate field) value)
                  (error (format #f "Invalid value for field ~a: ~s"
                                 (configuration-field-name field) value)))))
            fields))

(define (list-of pred?)
  (lambda (x) (and (list? x) (every pred? x))))
(define list-of-strings? (list-of string?))

(define no-serialization '(no serialization))

(define-syntax-rule (id ctx parts ...)
  (datum->syntax ctx (symbol-append (syntax->datum parts) ...)))

;; (define-configuration stem (field (type [default]) doc) ... [(no-serialization)])
(define-syntax define-configuration
  (lambda (s)
    (syntax-case s (no-serialization)
      ((_ stem clause ... (no-serialization))
       #'(define-configuration stem clause ...))
      ((_ stem (field (ftype def ...) doc) ...)
       (with-syntax ((record (id #'stem #'< #'stem #'>))
                     (%ctor (id #'stem #'% #'stem))
                     (make (id #'stem #'make- #'stem))
                     (pred (id #'stem #'stem #'?))
                     (fields (id #'stem #'stem #'-fields))
                     ((fgetter ...) (map (lambda (f) (id #'stem #'stem #'- f)) #'(field ...)))
                     ((ftype? ...) (map (lambda (t) (id #'stem t #'?)) #'(ftype ...)))
                     ((spec ...) (map (lambda (f d) (syntax-case d ()
                                                      ((t x) #`(#,f #,(id #'stem #'stem #'- f) (default x)))
                                                      ((t) #`(#,f #,(id #'stem #'stem #'- f)))))
                                      #'(field ...) #'((ftype def ...) ...)))
                     ((thunk ...) (map (lambda (f d) (syntax-case d ()
                                                       ((t x) #'(lambda () x))
                                                       ((t) #`(lambda () (error (format #f "~a: no default for ~a" 'stem '#,f))))))
                                       #'(field ...) #'((ftype def ...) ...))))
         #'(begin
             (define-record-type* record %ctor make pred spec ...)
             (define fields
               (list (configuration-field
                      (name 'field) (type 'ftype) (getter fgetter) (predicate ftype?)
                      (default-value-thunk thunk) (documentation doc))
                     ...))
             (define-syntax-rule (stem arg (... ...))
               (let ((conf (%ctor arg (... ...))))
                 (validate-configuration conf fields)
                 conf))))))))

(define-syntax-rule (define-configuration/no-serialization stem clause ...)
  (define-configuration stem clause ... (no-serialization)))
