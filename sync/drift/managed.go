package drift

import (
	"errors"
	"fmt"
	"time"
)

// ErrNoManagedFields is returned when the live object carries no managedFields, e.g.
// because a watch cache stripped them: without them ownership cannot be told.
var ErrNoManagedFields = errors.New("live object has no managedFields")

// entry is one managedFields entry, read straight from the unstructured object.
type entry struct {
	manager     string
	operation   string
	subresource string
	// time is the raw RFC 3339 time; parsed only when the entry is reported.
	time string
	// fields is the decoded fieldsV1 tree.
	fields map[string]any
}

const (
	operationApply = "Apply"
	fieldsV1       = "FieldsV1"
)

// readEntries returns the managedFields entries of an unstructured object without
// converting them to typed values. own is the index of Outpost's Apply entry on the main
// resource, -1 when there is none.
func readEntries(obj map[string]any, manager string) (entries []entry, own int, err error) {
	meta, _ := obj["metadata"].(map[string]any)
	raw, _ := meta["managedFields"].([]any)
	if len(raw) == 0 {
		return nil, -1, ErrNoManagedFields
	}
	entries = make([]entry, 0, len(raw))
	own = -1
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, -1, fmt.Errorf("managedFields[%d]: want an object, got %T", i, r)
		}
		e := entry{}
		e.manager, _ = m["manager"].(string)
		e.operation, _ = m["operation"].(string)
		e.subresource, _ = m["subresource"].(string)
		e.time, _ = m["time"].(string)
		if ft, _ := m["fieldsType"].(string); ft != "" && ft != fieldsV1 {
			return nil, -1, fmt.Errorf("managedFields[%d] (manager %q): unsupported fieldsType %q", i, e.manager, ft)
		}
		if f, present := m["fieldsV1"]; present && f != nil {
			if e.fields, ok = f.(map[string]any); !ok {
				return nil, -1, fmt.Errorf("managedFields[%d] (manager %q): fieldsV1: want an object, got %T", i, e.manager, f)
			}
		}
		if e.manager == manager && e.operation == operationApply && e.subresource == "" {
			own = len(entries)
		}
		entries = append(entries, e)
	}
	return entries, own, nil
}

// when returns the entry's time, or observedAt (and true) when it has none.
func (e *entry) when(observedAt time.Time) (time.Time, bool) {
	if e.time == "" {
		return observedAt, true
	}
	t, err := time.Parse(time.RFC3339, e.time)
	if err != nil {
		return observedAt, true
	}
	return t, false
}
