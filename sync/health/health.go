package health

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/object"
)

// Status is the health of an object or an app.
type Status string

const (
	// Current: the object is ready, or has no notion of readiness.
	Current Status = "Current"
	// InProgress: the object is making its way to Current.
	InProgress Status = "InProgress"
	// Failed: the object will not become Current without a change.
	Failed Status = "Failed"
	// Terminating: the object is being deleted.
	Terminating Status = "Terminating"
	// NotFound: the object does not exist.
	NotFound Status = "NotFound"
	// Unknown: the object could not be read or judged.
	Unknown Status = "Unknown"
	// Timeout: an app that did not become Current within its health timeout. Only Wait
	// returns it, and only for apps.
	Timeout Status = "Timeout"
)

// severity orders statuses, worst first; the app takes its worst object's status.
func severity(s Status) int {
	switch s {
	case Failed:
		return 0
	case Timeout:
		return 1
	case NotFound:
		return 2
	case Unknown:
		return 3
	case Terminating:
		return 4
	case InProgress:
		return 5
	case Current:
		return 7
	}
	return 6 // an unexpected status is treated as not ready, better than Unknown
}

// ObjectHealth is the health of one object.
type ObjectHealth struct {
	// Ref names the object.
	Ref object.Ref `json:"ref"`
	// Status is its kstatus status (or NotFound, Unknown).
	Status Status `json:"status"`
	// Message explains the status, from kstatus or the read error.
	Message string `json:"message,omitempty"`
}

// AppHealth is the health of one app: its least healthy object decides.
type AppHealth struct {
	// Status is the app's status: that of its worst object, or Timeout.
	Status Status `json:"status"`
	// Objects are the app's objects in the order given.
	Objects []ObjectHealth `json:"objects,omitempty"`
	// Failing is the first object with the worst status; nil when the app is Current.
	Failing *ObjectHealth `json:"failing,omitempty"`
	// Message sums the app's health up and names the failing object.
	Message string `json:"message"`
}

// Of computes the health of a live object with kstatus. A nil object is NotFound.
func Of(ref object.Ref, obj *unstructured.Unstructured) ObjectHealth {
	if obj == nil {
		return ObjectHealth{Ref: ref, Status: NotFound, Message: "object not found"}
	}
	res, err := status.Compute(obj)
	if err != nil {
		return ObjectHealth{Ref: ref, Status: Unknown, Message: fmt.Sprintf("compute status: %v", err)}
	}
	s := Status(res.Status)
	if res.Status == status.UnknownStatus {
		s = Unknown
	}
	return ObjectHealth{Ref: ref, Status: s, Message: res.Message}
}

// Aggregate folds object healths into the app's health. It is pure; objects are kept
// in the order given and the first object of the worst status is Failing.
func Aggregate(objects []ObjectHealth) AppHealth {
	app := AppHealth{Status: Current, Objects: objects}
	worst := -1
	for i := range objects {
		if worst < 0 || severity(objects[i].Status) < severity(objects[worst].Status) {
			worst = i
		}
	}
	if worst < 0 || objects[worst].Status == Current {
		app.Message = fmt.Sprintf("all %d objects are Current", len(objects))
		if len(objects) == 1 {
			app.Message = "the object is Current"
		}
		if len(objects) == 0 {
			app.Message = "no objects"
		}
		return app
	}
	failing := objects[worst]
	app.Status = failing.Status
	app.Failing = &failing
	app.Message = describe(failing)
	if n := count(objects, failing.Status); n > 1 {
		app.Message = fmt.Sprintf("%s (and %d more %s)", app.Message, n-1, failing.Status)
	}
	return app
}

// describe renders "Deployment/shop/web is InProgress: Available: 0/1".
func describe(o ObjectHealth) string {
	if o.Message == "" {
		return fmt.Sprintf("%s is %s", o.Ref, o.Status)
	}
	return fmt.Sprintf("%s is %s: %s", o.Ref, o.Status, o.Message)
}

func count(objects []ObjectHealth, s Status) int {
	n := 0
	for _, o := range objects {
		if o.Status == s {
			n++
		}
	}
	return n
}

// timedOut turns a not-yet-Current app into a Timeout one, keeping the object it
// was waiting for as Failing.
func timedOut(app AppHealth, after string) AppHealth {
	if app.Status == Current || app.Status == Failed {
		return app
	}
	app.Message = fmt.Sprintf("not Current after %s: %s", after, app.Message)
	app.Status = Timeout
	return app
}
