package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	ssaobject "github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/object"
)

// Hook delete policies understood by RunHook (Helm's helm.sh/hook-delete-policy).
const (
	HookDeleteBeforeCreation = "before-hook-creation"
	HookDeleteSucceeded      = "hook-succeeded"
	HookDeleteFailed         = "hook-failed"
)

// HookError is a hook that failed to apply or to become ready.
type HookError struct {
	// Object is the hook object.
	Object object.Ref
	// Err is the cause.
	Err error
}

func (e *HookError) Error() string { return fmt.Sprintf("hook %s: %v", e.Object, e.Err) }

// Unwrap returns the cause.
func (e *HookError) Unwrap() error { return e.Err }

// RunHook applies one hook object of app (a Helm chart hook) outside the inventory
// and waits until it is ready (kstatus Current: a Job has completed), at most
// timeout. Delete policies: before-hook-creation deletes a previous object of the
// same name first (and waits until it is gone), hook-succeeded deletes it once ready,
// hook-failed deletes it when it failed. A hook is never pruned and its errors are a
// *HookError.
func (s *Syncer) RunHook(ctx context.Context, app string, obj *unstructured.Unstructured, deletePolicies []string, timeout time.Duration) error {
	objs, err := s.prepare(app, []*unstructured.Unstructured{obj})
	if err != nil {
		return err
	}
	o := objs[0]
	ref := object.RefOf(o)
	fail := func(err error) error {
		if slices.Contains(deletePolicies, HookDeleteFailed) {
			err = errors.Join(err, s.deleteHook(ctx, o, false))
		}
		return &HookError{Object: ref, Err: err}
	}
	if err := s.fenced(app); err != nil {
		return &HookError{Object: ref, Err: err}
	}
	if slices.Contains(deletePolicies, HookDeleteBeforeCreation) {
		if err := s.deleteHook(ctx, o, true); err != nil {
			return &HookError{Object: ref, Err: err}
		}
	}
	if _, err := s.serverApply(ctx, o); err != nil {
		return fail(err)
	}
	set := ssaobject.ObjMetadataSet{{GroupKind: o.GroupVersionKind().GroupKind(), Namespace: o.GetNamespace(), Name: o.GetName()}}
	err = s.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: s.cfg.WaitInterval, Timeout: timeout, FailFast: true})
	if err != nil {
		return fail(fmt.Errorf("not ready: %w", err))
	}
	if slices.Contains(deletePolicies, HookDeleteSucceeded) {
		if err := s.deleteHook(ctx, o, false); err != nil {
			return &HookError{Object: ref, Err: err}
		}
	}
	s.cfg.Logger.DebugContext(ctx, "hook ran", "app", app, "object", ref.String())
	return nil
}

// deleteHook deletes a hook object if it exists, with its dependents (a Job's Pods),
// and, when wait is set, waits until it is gone.
func (s *Syncer) deleteHook(ctx context.Context, o *unstructured.Unstructured, waitGone bool) error {
	cur := &metav1.PartialObjectMetadata{}
	cur.SetGroupVersionKind(o.GroupVersionKind())
	err := s.cfg.Client.Get(ctx, client.ObjectKeyFromObject(o), cur)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if !s.cfg.Owner.Owns(cur.Labels, o.GetLabels()[object.LabelApp]) {
		return fmt.Errorf("an object of that name exists and is not this app's hook: not deleted")
	}
	uid := cur.UID
	err = s.cfg.Client.Delete(ctx, cur, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete: %w", err)
	}
	if !waitGone {
		return nil
	}
	return wait.PollUntilContextTimeout(ctx, s.cfg.WaitInterval, s.cfg.WaitTimeout, true, func(ctx context.Context) (bool, error) {
		now := &metav1.PartialObjectMetadata{}
		now.SetGroupVersionKind(o.GroupVersionKind())
		err := s.cfg.Client.Get(ctx, client.ObjectKeyFromObject(o), now)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return now.UID != uid, err
	})
}
