package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Validator is a request body that checks itself.
type Validator interface {
	// Validate returns a *FieldError naming the first invalid field, or nil.
	Validate() error
}

// DecodeError is a body that is not one well-formed JSON document of the expected
// shape. Field names the offending field when the JSON had a value of the wrong type.
type DecodeError struct {
	// Field is the dotted path of a field with a value of the wrong type, or empty.
	Field string
	// Err is the JSON decoder's error.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	if e.Field != "" {
		return "malformed JSON body: " + e.Field + ": " + e.Err.Error()
	}
	return "malformed JSON body: " + e.Err.Error()
}

// Unwrap returns the decoder's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// TooLargeError is a body over the size limit.
type TooLargeError struct {
	// Limit is the limit, in bytes.
	Limit int64
}

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("body is larger than the limit of %d bytes", e.Limit)
}

// Decode reads one JSON document of at most limit bytes from r into v and validates
// it. It returns a *TooLargeError, a *DecodeError (malformed JSON, trailing data, a
// value of the wrong type) or the *FieldError of v.Validate; other errors come from
// reading r. Unknown fields are ignored (see the package doc on compatibility).
func Decode(r io.Reader, limit int64, v Validator) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if int64(len(data)) > limit {
		return &TooLargeError{Limit: limit}
	}
	if err := decodeJSON(data, v); err != nil {
		return err
	}
	return v.Validate()
}

// decodeJSON unmarshals exactly one JSON document.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return &DecodeError{Field: typeErr.Field, Err: err}
		}
		return &DecodeError{Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &DecodeError{Err: errors.New("trailing data after the JSON document")}
	}
	return nil
}

// ErrorResponseFor maps an error of Decode (or of a Validate method) to the
// ErrorResponse the hub sends; ok is false for any other error.
func ErrorResponseFor(err error) (resp ErrorResponse, ok bool) {
	var fieldErr *FieldError
	var decodeErr *DecodeError
	var tooLarge *TooLargeError
	switch {
	case errors.As(err, &fieldErr):
		return fieldErr.Response(), true
	case errors.As(err, &decodeErr):
		return ErrorResponse{Code: CodeBadRequest, Message: decodeErr.Error(), Field: decodeErr.Field}, true
	case errors.As(err, &tooLarge):
		return ErrorResponse{Code: CodeTooLarge, Message: tooLarge.Error()}, true
	}
	return ErrorResponse{}, false
}
