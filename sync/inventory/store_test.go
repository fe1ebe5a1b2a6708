package inventory

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/object"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "inventory"}, func(c *testenv.Cluster) { env = c })
}

func newClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(env.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStoreRoundTrip(t *testing.T) {
	ctx := t.Context()
	c := newClient(t)
	// A namespace per test: the store creates it, as it creates outpost-system.
	nsName := "inv-" + env.CreateNamespace(t)
	s := NewStore(c, StoreOptions{Namespace: nsName})

	inv, err := s.Load(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if inv.App != "web" || len(inv.Entries) != 0 {
		t.Fatalf("missing inventory loaded as %+v, want empty", inv)
	}
	entries := []Entry{
		{Ref: ref("ConfigMap", "web", "b"), Version: "v1", Record: Record{Hash: "h", ResourceVersion: "12"}},
		{Ref: object.Ref{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "a"}, Version: "v1"},
	}
	inv = inv.WithEntries(entries)
	if err := s.Save(ctx, inv); err != nil {
		t.Fatalf("first save (creates namespace %s): %v", nsName, err)
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: nsName}, &ns); err != nil {
		t.Fatalf("namespace not created: %v", err)
	}

	got, err := s.Load(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(got.Entries, Normalize(entries)) {
		t.Fatalf("loaded %+v, want %+v", got.Entries, Normalize(entries))
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: nsName, Name: "outpost-inv-web"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Labels[LabelInventory] != "web" || cm.Labels[object.LabelApp] != "" {
		t.Errorf("inventory labels = %v: want %s=web and no %s", cm.Labels, LabelInventory, object.LabelApp)
	}

	// Save again from the loaded copy, then a save from the stale copy conflicts.
	got = got.WithEntries(got.Entries[:1])
	if err := s.Save(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, got); err != nil {
		t.Fatalf("saving twice from the same copy: %v", err)
	}
	var conflict *ConflictError
	if err := s.Save(ctx, inv.WithEntries(nil)); !errors.As(err, &conflict) {
		t.Fatalf("save from a stale copy: err = %v, want *ConflictError", err)
	}

	if err := s.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "web"); err != nil {
		t.Fatalf("deleting a missing inventory: %v", err)
	}
	if got, err := s.Load(ctx, "web"); err != nil || len(got.Entries) != 0 {
		t.Fatalf("after delete: %+v, %v", got, err)
	}
}

func TestStoreConcurrentCreateConflicts(t *testing.T) {
	ctx := t.Context()
	s := NewStore(newClient(t), StoreOptions{Namespace: env.CreateNamespace(t)})
	a, _ := s.Load(ctx, "web")
	b, _ := s.Load(ctx, "web")
	if err := s.Save(ctx, a.WithEntries([]Entry{{Ref: ref("ConfigMap", "x", "a"), Version: "v1"}})); err != nil {
		t.Fatal(err)
	}
	var conflict *ConflictError
	if err := s.Save(ctx, b); !errors.As(err, &conflict) {
		t.Fatalf("second creator: err = %v, want *ConflictError", err)
	}
}

func TestStoreRejectsBadInput(t *testing.T) {
	ctx := t.Context()
	c := newClient(t)
	ns := env.CreateNamespace(t)
	s := NewStore(c, StoreOptions{Namespace: ns})
	if _, err := s.Load(ctx, "Not_A_Name"); err == nil {
		t.Error("Load accepted an invalid app name")
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ConfigMapName("web")},
		Data:       map[string]string{dataKey: `{"app":"db","entries":[]}`},
	}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "web"); err == nil {
		t.Error("Load accepted an inventory recorded for another app")
	}
}
