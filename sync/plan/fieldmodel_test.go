package plan

import (
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/drift"
	"github.com/outpost-gitops/outpost/sync/object"
)

// portDeployment is a Deployment whose container port is named portName, with the
// managedFields the apiserver writes for Outpost's apply of it: containers keyed by
// name, ports by containerPort and protocol.
func portDeployment(t *testing.T, portName string) *unstructured.Unstructured {
	t.Helper()
	const doc = `{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "shop", "managedFields": [{
    "manager": "outpost", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
    "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
      "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}, "f:ports": {
        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}},
        "k:{\"containerPort\":9090,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}}}}}}}}}]},
  "spec": {"template": {"spec": {"containers": [
    {"name": "web", "image": "nginx", "ports": [
      {"containerPort": 9090, "protocol": "UDP", "name": "metrics"},
      {"containerPort": 80, "protocol": "TCP", "name": "PORTNAME"}]}]}}}}`
	var o map[string]any
	if err := json.Unmarshal([]byte(doc), &o); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: o}
	ports, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	c := ports[0].(map[string]any)
	c["ports"].([]any)[1].(map[string]any)["name"] = portName
	_ = unstructured.SetNestedSlice(u.Object, ports, "spec", "template", "spec", "containers")
	return u
}

// The same field prints the same in a plan diff and in a drift report: one field-path
// model (package sync/field), lists matched by the keys managedFields gives them.
func TestPlanAndDriftNameAFieldAlike(t *testing.T) {
	const want = "spec.template.spec.containers[name=web].ports[containerPort=80,protocol=TCP].name"
	live, merged := portDeployment(t, "web-http"), portDeployment(t, "http")

	changes := Compare(live, merged, []byte("k"))
	if len(changes) != 1 || changes[0].Path != want || changes[0].Old != "web-http" || changes[0].New != "http" {
		t.Fatalf("plan changes %v, want one change at %s", changes, want)
	}
	rep, err := drift.Detect(object.DefaultOwner(), merged, live, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Fields) != 1 || rep.Fields[0].Path != want {
		t.Fatalf("drift fields %+v, want one field at %s", rep.Fields, want)
	}
}

// A list item that moves in the list is the same item for plan, as for the apiserver:
// no change, where matching by index would show two.
func TestCompareMatchesKeyedItemsWhereverTheyAre(t *testing.T) {
	live, merged := portDeployment(t, "http"), portDeployment(t, "http")
	cs, _, _ := unstructured.NestedSlice(merged.Object, "spec", "template", "spec", "containers")
	ports := cs[0].(map[string]any)["ports"].([]any)
	ports[0], ports[1] = ports[1], ports[0]
	_ = unstructured.SetNestedSlice(merged.Object, cs, "spec", "template", "spec", "containers")
	if changes := Compare(live, merged, []byte("k")); len(changes) != 0 {
		t.Fatalf("reordered keyed items: changes %v, want none", changes)
	}
}
