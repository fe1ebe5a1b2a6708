package field

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// number returns the numeric value of JSON-like numbers: every Go integer and float
// type unstructured objects hold, and json.Number.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// Equal compares two unstructured values: maps, slices, strings, bools, nil and
// numbers, a number equal to the same number of another type (int64 3 equals float64
// 3). The usual types are compared without reflection; others with reflect.DeepEqual.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	case int64:
		if y, ok := b.(int64); ok {
			return x == y
		}
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !Equal(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	if _, ok := number(b); ok {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// EqualLeaf compares a desired leaf with the live value. present is false when the
// live object lacks the field. Besides Equal, it accepts what the API server
// normalizes: an empty desired map or list is dropped on write, and quantities are
// rewritten canonically ("1000m" becomes "1", 2 becomes "2").
func EqualLeaf(desired, live any, present bool) bool {
	if !present {
		return IsEmptyContainer(desired)
	}
	if Equal(desired, live) {
		return true
	}
	return equalQuantity(desired, live)
}

// IsEmptyContainer tells whether v is an empty map or list.
func IsEmptyContainer(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// equalQuantity tells whether both values parse as the same resource quantity.
func equalQuantity(a, b any) bool {
	qa, ok := quantity(a)
	if !ok {
		return false
	}
	qb, ok := quantity(b)
	return ok && qa.Cmp(qb) == 0
}

func quantity(v any) (resource.Quantity, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	default:
		f, ok := number(v)
		if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
			return resource.Quantity{}, false
		}
		s = strconv.FormatFloat(f, 'f', -1, 64)
	}
	if s == "" || len(s) > 64 {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	return q, err == nil
}
